package jetstream_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/jetstream"
	"github.com/switchyard-go/switchyard/transports/jetstream/jstest"
)

// heldPublishes returns a publisher that provisions nothing, and the
// publishes it sends to subject held, which no stream stores: a plain
// subscriber takes them and answers none, so each stays unacknowledged
// until the test answers it with ack.
func heldPublishes(t *testing.T, cfg jetstream.Config) (pub *jetstream.Publisher, nc *nats.Conn, held <-chan *nats.Msg) {
	t.Helper()
	srv := jstest.Start(t)
	nc = connect(t, srv.URL())
	off := false
	cfg.Provision = &off
	pub, err := jetstream.NewPublisher(cfg, nc, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	ch := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe("held", ch)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, nc.Flush())
	return pub, nc, ch
}

// ack answers a held publish as its stream would.
func ack(t *testing.T, m *nats.Msg) {
	t.Helper()
	require.NoError(t, m.Respond([]byte(`{"stream":"held","seq":1}`)))
}

func nextHeld(t *testing.T, held <-chan *nats.Msg) *nats.Msg {
	t.Helper()
	select {
	case m := <-held:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no publish arrived")
		return nil
	}
}

func publishAsync(pub *jetstream.Publisher, topic string, m *message.Message) <-chan error {
	done := make(chan error, 1)
	go func() { done <- pub.Publish(topic, m) }()
	return done
}

func result(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Publish did not return")
		return nil
	}
}

// TestPublishWaitsForRoom: with MaxPending unacknowledged publishes out, a
// publish waits for room until its deadline, however long that is.
func TestPublishWaitsForRoom(t *testing.T) {
	cfg := testConfig("")
	cfg.MaxPending = 1
	pub, nc, held := heldPublishes(t, cfg)
	j, err := njs.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = j.CreateStream(ctx, njs.StreamConfig{Name: "room", Subjects: []string{"room"}, Storage: njs.MemoryStorage})
	require.NoError(t, err)

	first := publishAsync(pub, "held", message.NewMessage("first", nil))
	m := nextHeld(t, held) // first holds the only room

	short := message.NewMessage("short", nil)
	shortCtx, cancelShort := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancelShort()
	short.SetContext(shortCtx)
	start := time.Now()
	shortDone := publishAsync(pub, "room", short)
	patient := publishAsync(pub, "room", message.NewMessage("patient", nil))

	err = result(t, shortDone)
	require.ErrorIs(t, err, njs.ErrTooManyStalledMsgs)
	require.GreaterOrEqual(t, time.Since(start), 390*time.Millisecond, "gave up before its deadline")

	ack(t, m) // room again: the patient publish, waiting for longer than a stall's step, goes
	require.NoError(t, result(t, first))
	require.NoError(t, result(t, patient))
}

// TestPublishWaitEnds: a publish whose acknowledgement does not come
// returns when its message's context is done, with the context's cause,
// or after PublishTimeout.
func TestPublishWaitEnds(t *testing.T) {
	cfg := testConfig("")
	cfg.PublishTimeout = 500 * time.Millisecond
	pub, _, held := heldPublishes(t, cfg)

	t.Run("cancelled", func(t *testing.T) {
		cause := errors.New("caller went away")
		ctx, cancel := context.WithCancelCause(context.Background())
		m := message.NewMessage("cancelled", nil)
		m.SetContext(ctx)
		done := publishAsync(pub, "held", m)
		nextHeld(t, held)
		cancel(cause)
		require.ErrorIs(t, result(t, done), cause)
	})

	t.Run("context deadline", func(t *testing.T) {
		cause := errors.New("too late for the caller")
		ctx, cancel := context.WithTimeoutCause(context.Background(), 100*time.Millisecond, cause)
		defer cancel()
		m := message.NewMessage("deadline", nil)
		m.SetContext(ctx)
		require.ErrorIs(t, pub.Publish("held", m), cause)
		nextHeld(t, held)
	})

	t.Run("publish timeout", func(t *testing.T) {
		start := time.Now()
		err := pub.Publish("held", message.NewMessage("timeout", nil))
		require.True(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, njs.ErrAsyncPublishTimeout), err)
		require.GreaterOrEqual(t, time.Since(start), 490*time.Millisecond)
		nextHeld(t, held)
	})

	t.Run("deadline without Done", func(t *testing.T) {
		m := message.NewMessage("no-done", nil)
		m.SetContext(deadlineOnly{Context: context.Background(), deadline: time.Now().Add(100 * time.Millisecond)})
		start := time.Now()
		require.ErrorIs(t, pub.Publish("held", m), context.DeadlineExceeded)
		require.Less(t, time.Since(start), 400*time.Millisecond, "waited for PublishTimeout, not the deadline")
		nextHeld(t, held)
	})

	t.Run("earliest deadline of a batch", func(t *testing.T) {
		cause := errors.New("the second message's deadline")
		ctx, cancel := context.WithTimeoutCause(context.Background(), 100*time.Millisecond, cause)
		defer cancel()
		late, early := message.NewMessage("late", nil), message.NewMessage("early", nil)
		early.SetContext(ctx)
		require.ErrorIs(t, pub.Publish("held", late, early), cause)
		nextHeld(t, held)
		nextHeld(t, held)
	})
}

// deadlineOnly is a context with a deadline and no Done, as a caller may
// make one.
type deadlineOnly struct {
	context.Context
	deadline time.Time
}

func (c deadlineOnly) Deadline() (time.Time, bool) { return c.deadline, true }
