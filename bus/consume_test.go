package bus_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
)

// A handler sees the context values Watermill's Router gives a consumer
// handler: tracing and users' code read the handler's name from it.
func TestHandleSetsRouterContextValues(t *testing.T) {
	b, err := bus.New(bus.DefaultConfig())
	require.NoError(t, err)
	type seen struct{ handler, topic, subscriber string }
	got := make(chan seen, 1)
	require.NoError(t, b.Handle("hub", "events:chat", func(m *message.Message) error {
		ctx := m.Context()
		got <- seen{message.HandlerNameFromCtx(ctx), message.SubscribeTopicFromCtx(ctx), message.SubscriberNameFromCtx(ctx)}
		return nil
	}))
	start(t, b)
	require.NoError(t, b.Publish("events:chat", bus.NewMessage("chat_message", "c1", []byte("{}"))))
	select {
	case s := <-got:
		assert.Equal(t, "hub", s.handler)
		assert.Equal(t, "events:chat", s.topic)
		assert.NotEmpty(t, s.subscriber)
	case <-time.After(10 * time.Second):
		t.Fatal("not handled")
	}
}

// A handler that panics or fails has its message nacked and redelivered;
// one that returns nil acks it, once.
func TestHandleNacksPanicsAndErrors(t *testing.T) {
	cfg := bus.DefaultConfig()
	cfg.Bus.RetryBackoff = time.Millisecond
	b, err := bus.New(cfg)
	require.NoError(t, err)
	var calls atomic.Int32
	acked := make(chan struct{}, 2)
	require.NoError(t, b.Handle("hub", "events:chat", func(*message.Message) error {
		switch calls.Add(1) {
		case 1:
			panic("boom")
		case 2:
			return assert.AnError
		}
		acked <- struct{}{}
		return nil
	}))
	start(t, b)
	require.NoError(t, b.Publish("events:chat", bus.NewMessage("chat_message", "c1", []byte("{}"))))
	select {
	case <-acked:
	case <-time.After(10 * time.Second):
		t.Fatal("not redelivered after a panic and an error")
	}
	require.NoError(t, b.Close())
	assert.Equal(t, int32(3), calls.Load(), "handled again after it was acked")
}

// A handler blocked on one event does not hold back events of other keys:
// they are handled while it waits.
func TestHandleRunsKeysConcurrently(t *testing.T) {
	b, err := bus.New(bus.DefaultConfig())
	require.NoError(t, err)
	release := make(chan struct{})
	others := make(chan struct{}, 10)
	require.NoError(t, b.Handle("hub", "events:chat", func(m *message.Message) error {
		if m.Metadata.Get(bus.MetaEventKey) == "slow" {
			<-release
			return nil
		}
		others <- struct{}{}
		return nil
	}))
	start(t, b)
	defer close(release)
	require.NoError(t, b.Publish("events:chat", bus.NewMessage("chat_message", "slow", nil)))
	for _, key := range []string{"a", "b", "c", "d"} {
		require.NoError(t, b.Publish("events:chat", bus.NewMessage("chat_message", key, nil)))
	}
	for range 4 {
		select {
		case <-others:
		case <-time.After(10 * time.Second):
			t.Fatal("other keys held back by a blocked handler")
		}
	}
}
