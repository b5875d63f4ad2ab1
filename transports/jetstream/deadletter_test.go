package jetstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/jetstream"
	"github.com/switchyard-go/switchyard/transports/jetstream/jstest"
)

// readStream returns the messages of a stream, oldest first.
func readStream(t *testing.T, nc *nats.Conn, stream string, n int) []njs.Msg {
	t.Helper()
	j, err := njs.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The dead-letter stream is made with the first dead letter.
	require.Eventually(t, func() bool {
		s, err := j.Stream(ctx, stream)
		return err == nil && s.CachedInfo().State.Msgs >= uint64(n)
	}, 10*time.Second, 5*time.Millisecond)
	c, err := j.OrderedConsumer(ctx, stream, njs.OrderedConsumerConfig{})
	require.NoError(t, err)
	batch, err := c.Fetch(n, njs.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	var out []njs.Msg
	for m := range batch.Messages() {
		out = append(out, m)
	}
	require.NoError(t, batch.Error())
	return out
}

// TestDeadLetter: a message nacked max_deliver times goes to the
// dead-letter subject with the reason and its origin, is counted, and its
// key's later messages follow; a message that is not one (a header with two
// values) goes there at once.
func TestDeadLetter(t *testing.T) {
	srv := jstest.Start(t)
	nc := connect(t, srv.URL())
	reg := prometheus.NewRegistry()
	cfg := testConfig("hub")
	cfg.MaxDeliver = 3
	pub, err := jetstream.NewPublisher(cfg, nc, nil)
	require.NoError(t, err)
	defer pub.Close()
	sub, err := jetstream.NewSubscriber(cfg, nc, nil, jetstream.NewMetrics(reg))
	require.NoError(t, err)
	defer sub.Close()

	const topic = "events_dl"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)

	poison := message.NewMessage("poison", []byte("p"))
	poison.Metadata.Set("event_key", "k")
	next := message.NewMessage("next", []byte("n"))
	next.Metadata.Set("event_key", "k")
	require.NoError(t, pub.Publish(topic, poison, next))

	// A foreign producer's message with a header metadata cannot hold.
	bad := nats.NewMsg(topic)
	bad.Header.Add("twice", "a")
	bad.Header.Add("twice", "b")
	bad.Data = []byte("bad")
	require.NoError(t, nc.PublishMsg(bad))

	attempts := 0
	for {
		m := receive(t, ch)
		if m.UUID == "poison" {
			attempts++
			m.Nack()
			continue
		}
		require.Equal(t, "next", m.UUID, "only after poison was dead-lettered")
		m.Ack()
		break
	}
	require.Equal(t, 3, attempts)

	dl := readStream(t, nc, jetstream.DefaultDeadLetterStream, 2)
	require.Len(t, dl, 2)
	byReason := map[string]njs.Msg{}
	for _, m := range dl {
		require.Equal(t, "dead_letter."+topic, m.Subject())
		require.Equal(t, topic, m.Headers().Get(jetstream.DeadLetterTopicHeader))
		require.Equal(t, topic, m.Headers().Get(jetstream.DeadLetterStreamHeader))
		require.NotEmpty(t, m.Headers().Get(jetstream.DeadLetterSequenceHeader))
		byReason[m.Headers().Get(jetstream.DeadLetterReasonHeader)[:4]] = m
	}
	require.Equal(t, "poison", byReason["nack"].Headers().Get(jetstream.UUIDHeader))
	require.Equal(t, "p", string(byReason["nack"].Data()))
	require.Equal(t, "nacked 3 times", byReason["nack"].Headers().Get(jetstream.DeadLetterReasonHeader))
	require.Equal(t, "bad", string(byReason["malf"].Data()))
	require.Equal(t, 1.0, testutil.ToFloat64(mustCounter(t, reg, "nacked")))
	require.Equal(t, 1.0, testutil.ToFloat64(mustCounter(t, reg, "malformed")))
}

func mustCounter(t *testing.T, reg *prometheus.Registry, reason string) prometheus.Collector {
	t.Helper()
	m := jetstream.NewMetrics(reg) // the registered collectors, reused
	return jetstream.DeadLetteredCounter(m, "events_dl", reason)
}

// TestNackKeepsKeyOrder: a nacked message is handed out again before any
// later message of its key; other keys go on meanwhile.
func TestNackKeepsKeyOrder(t *testing.T) {
	srv := jstest.Start(t)
	nc := connect(t, srv.URL())
	cfg := testConfig("hub")
	cfg.RetryBackoff = 20 * time.Millisecond
	cfg.MaxRetryBackoff = 20 * time.Millisecond
	pub, err := jetstream.NewPublisher(cfg, nc, nil)
	require.NoError(t, err)
	defer pub.Close()
	sub, err := jetstream.NewSubscriber(cfg, nc, nil, nil)
	require.NoError(t, err)
	defer sub.Close()
	const topic, n, keys = "events_order", 200, 5
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = keyedMessage(i, keys)
	}
	require.NoError(t, pub.Publish(topic, msgs...))

	nacked := map[string]bool{}
	var got []*message.Message
	for len(got) < n {
		select {
		case m := <-ch:
			if i := len(got); i%7 == 0 && !nacked[m.UUID] {
				nacked[m.UUID] = true
				m.Nack()
				continue
			}
			m.Ack()
			got = append(got, m)
		case <-time.After(30 * time.Second):
			t.Fatalf("received %d of %d", len(got), n)
		}
	}
	requireKeyOrder(t, got)
}

// TestMaxDeliverCountsServerDeliveries: a message the server delivered
// max_deliver times without an ack (consumers that went away holding it)
// is dead-lettered on its next delivery instead of being handed out again.
func TestMaxDeliverCountsServerDeliveries(t *testing.T) {
	srv := jstest.Start(t)
	nc := connect(t, srv.URL())
	cfg := testConfig("hub")
	cfg.MaxDeliver = 2
	pub, err := jetstream.NewPublisher(cfg, nc, nil)
	require.NoError(t, err)
	defer pub.Close()
	const topic = "events_maxdeliver"
	require.NoError(t, pub.Publish(topic, message.NewMessage("stuck", nil)))

	// Consumers come, take the message and go away without an ack, until
	// it is dead-lettered instead of handed out.
	handed := 0
	for dead := false; !dead; {
		require.LessOrEqual(t, handed, cfg.MaxDeliver, "handed out after max_deliver deliveries")
		sub, err := jetstream.NewSubscriber(cfg, nc, nil, nil)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := sub.Subscribe(ctx, topic)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			select {
			case m := <-ch:
				require.Equal(t, "stuck", m.UUID)
				handed++
				return true
			default:
			}
			dead = streamMsgs(t, nc, jetstream.DefaultDeadLetterStream) > 0
			return dead
		}, 30*time.Second, 5*time.Millisecond)
		cancel()
		require.NoError(t, sub.Close())
	}
	require.GreaterOrEqual(t, handed, 1)
	dl := readStream(t, nc, jetstream.DefaultDeadLetterStream, 1)
	require.Regexp(t, `^delivered [0-9]+ times without an ack$`, dl[0].Headers().Get(jetstream.DeadLetterReasonHeader))
	require.Equal(t, "stuck", dl[0].Headers().Get(jetstream.UUIDHeader))
}

// streamMsgs is how many messages stream holds; 0 if it does not exist.
func streamMsgs(t *testing.T, nc *nats.Conn, stream string) uint64 {
	t.Helper()
	j, err := njs.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := j.Stream(ctx, stream)
	if err != nil {
		return 0
	}
	return s.CachedInfo().State.Msgs
}
