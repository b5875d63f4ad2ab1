package jetstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/jetstream"
	"github.com/switchyard-go/switchyard/transports/jetstream/jstest"
)

// TestMetadataRefused: metadata a NATS header would change or refuse fails
// the publish before anything is sent.
func TestMetadataRefused(t *testing.T) {
	srv := jstest.Start(t)
	nc := connect(t, srv.URL())
	pub, err := jetstream.NewPublisher(testConfig(""), nc, nil)
	require.NoError(t, err)
	defer pub.Close()
	for name, md := range map[string][2]string{
		"line break":      {"k", "a\nb"},
		"leading space":   {"k", " v"},
		"trailing space":  {"k", "v "},
		"colon in key":    {"a:b", "v"},
		"space in key":    {"a b", "v"},
		"non-ASCII key":   {"clé", "v"},
		"empty key":       {"", "v"},
		"NATS header":     {"Nats-Rollup", "all"},
		"the UUID header": {jetstream.UUIDHeader, "other"},
	} {
		t.Run(name, func(t *testing.T) {
			m := message.NewMessage("refused", nil)
			m.Metadata.Set(md[0], md[1])
			require.ErrorIs(t, pub.Publish("events_md", m), jetstream.ErrMetadata)
		})
	}
	// Nothing was stored: the stream holds only what was fine.
	require.NoError(t, pub.Publish("events_md", message.NewMessage("fine", nil)))
	j, err := njs.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := j.Stream(ctx, "events_md")
	require.NoError(t, err)
	require.Equal(t, uint64(1), s.CachedInfo().State.Msgs)
}

// TestStreamDeleted: a stream deleted under a running publisher and
// subscriber is made again by the next publish, and the subscription
// makes its consumer again and goes on.
func TestStreamDeleted(t *testing.T) {
	srv := jstest.Start(t)
	nc := connect(t, srv.URL())
	cfg := testConfig("hub")
	pub, err := jetstream.NewPublisher(cfg, nc, nil)
	require.NoError(t, err)
	defer pub.Close()
	sub, err := jetstream.NewSubscriber(cfg, nc, nil, nil)
	require.NoError(t, err)
	defer sub.Close()
	const topic = "events_deleted"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	require.NoError(t, pub.Publish(topic, message.NewMessage("before", nil)))
	m := receive(t, ch)
	require.Equal(t, "before", m.UUID)
	m.Ack()

	j, err := njs.New(nc)
	require.NoError(t, err)
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	require.NoError(t, j.DeleteStream(dctx, topic))

	require.NoError(t, pub.Publish(topic, message.NewMessage("after", nil)))
	select {
	case m := <-ch:
		require.Equal(t, "after", m.UUID)
		m.Ack()
	case <-time.After(30 * time.Second):
		t.Fatal("the subscription did not resume")
	}
}

// TestRetryIsDropped: a message published again (a retry after a timeout)
// is dropped by the stream as a duplicate, as its UUID travels in
// Nats-Msg-Id.
func TestRetryIsDropped(t *testing.T) {
	srv := jstest.Start(t)
	nc := connect(t, srv.URL())
	pub, err := jetstream.NewPublisher(testConfig(""), nc, nil)
	require.NoError(t, err)
	defer pub.Close()
	m := message.NewMessage("once", []byte("payload"))
	require.NoError(t, pub.Publish("events_retry", m))
	require.NoError(t, pub.Publish("events_retry", m))
	require.NoError(t, pub.Publish("events_retry", message.NewMessage("other", nil)))
	j, err := njs.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := j.Stream(ctx, "events_retry")
	require.NoError(t, err)
	require.Equal(t, uint64(2), s.CachedInfo().State.Msgs)
	stored, err := s.GetMsg(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, "once", stored.Header.Get(nats.MsgIdHdr))
}
