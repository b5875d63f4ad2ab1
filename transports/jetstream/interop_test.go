package jetstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmjs "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/jetstream"
	"github.com/switchyard-go/switchyard/transports/jetstream/jstest"
)

// The interop tests run watermill-nats v2.1.3 against the same embedded
// server as this transport, in JetStream mode with its default marshaler
// (NATSMarshaler: payload as data, the UUID and metadata as headers), both
// of its packages: pkg/jetstream (on nats.go's jetstream API) and pkg/nats
// with JetStream on. Each way, every message arrives with its UUID,
// payload and metadata unchanged.

func interopMessages() []*message.Message {
	mk := func(uuid string, payload []byte, md map[string]string) *message.Message {
		m := message.NewMessage(uuid, payload)
		for k, v := range md {
			m.Metadata.Set(k, v)
		}
		return m
	}
	return []*message.Message{
		mk("u-bus", []byte(`{"text":"hi"}`), map[string]string{
			"event_type": "chat_message", "event_key": "req-1", "published_at": "2026-12-06T05:00:00.123456789Z",
		}),
		mk("u-empty", []byte{}, nil),
		mk("u-binary", []byte{0, 1, 2, 0xff, '\r', '\n'}, map[string]string{"k": "v"}),
		mk("u-unicode", []byte("é"), map[string]string{"Mixed-Case": "ünïcode value", "empty": ""}),
	}
}

func requireSameMessages(t *testing.T, want []*message.Message, got map[string]*message.Message) {
	t.Helper()
	require.Len(t, got, len(want))
	for _, w := range want {
		g, ok := got[w.UUID]
		require.True(t, ok, "message %s missing", w.UUID)
		require.Equal(t, string(w.Payload), string(g.Payload), w.UUID)
		wantMD := message.Metadata{}
		for k, v := range w.Metadata {
			wantMD[k] = v
		}
		require.Equal(t, wantMD, normalise(g.Metadata), w.UUID)
	}
}

// normalise makes a nil metadata an empty one.
func normalise(md message.Metadata) message.Metadata {
	if md == nil {
		return message.Metadata{}
	}
	return md
}

// receiveAll acks and returns, by UUID, the first delivery of n distinct
// messages.
func receiveAll(t *testing.T, ch <-chan *message.Message, n int) map[string]*message.Message {
	t.Helper()
	got := make(map[string]*message.Message, n)
	timeout := time.After(30 * time.Second)
	for len(got) < n {
		select {
		case m, ok := <-ch:
			require.True(t, ok, "channel closed after %d of %d messages", len(got), n)
			m.Ack()
			if _, dup := got[m.UUID]; !dup {
				got[m.UUID] = m
			}
		case <-timeout:
			t.Fatalf("received %d of %d messages", len(got), n)
		}
	}
	return got
}

func TestInteropWatermillNATSJetStream(t *testing.T) {
	srv := jstest.Start(t)
	nc := connect(t, srv.URL())
	logger := watermill.NopLogger{}

	t.Run("ours to theirs", func(t *testing.T) {
		const topic = "interop_ours"
		pub, err := jetstream.NewPublisher(testConfig(""), nc, nil)
		require.NoError(t, err)
		defer pub.Close()
		// The publisher makes the stream; watermill-nats's subscriber
		// expects it, and its consumer reads it from the start.
		msgs := interopMessages()
		require.NoError(t, pub.Publish(topic, msgs...))
		theirs, err := wmjs.NewSubscriber(wmjs.SubscriberConfig{URL: srv.URL(), Logger: logger})
		require.NoError(t, err)
		defer theirs.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch, err := theirs.Subscribe(ctx, topic)
		require.NoError(t, err)
		requireSameMessages(t, msgs, receiveAll(t, ch, len(msgs)))
	})

	t.Run("theirs to ours", func(t *testing.T) {
		const topic = "interop_theirs"
		sub, err := jetstream.NewSubscriber(testConfig("ours"), nc, nil, nil)
		require.NoError(t, err)
		defer sub.Close()
		// watermill-nats's publisher expects the stream to exist.
		require.NoError(t, sub.SubscribeInitialize(topic))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch, err := sub.Subscribe(ctx, topic)
		require.NoError(t, err)
		theirs, err := wmjs.NewPublisher(wmjs.PublisherConfig{URL: srv.URL(), Logger: logger})
		require.NoError(t, err)
		defer theirs.Close()
		msgs := interopMessages()
		require.NoError(t, theirs.Publish(topic, msgs...))
		requireSameMessages(t, msgs, receiveAll(t, ch, len(msgs)))
	})
}

func TestInteropWatermillNATSJetStreamMode(t *testing.T) {
	srv := jstest.Start(t)
	nc := connect(t, srv.URL())
	logger := watermill.NopLogger{}
	js := wmnats.JetStreamConfig{
		AutoProvision:    true,
		TrackMsgId:       true,
		DurablePrefix:    "theirs",
		SubscribeOptions: []nats.SubOpt{nats.DeliverAll(), nats.AckExplicit()},
	}

	t.Run("ours to theirs", func(t *testing.T) {
		const topic = "interop_mode_ours"
		pub, err := jetstream.NewPublisher(testConfig(""), nc, nil)
		require.NoError(t, err)
		defer pub.Close()
		theirs, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
			URL: srv.URL(), QueueGroupPrefix: "theirs", SubscribersCount: 1, AckWaitTimeout: 5 * time.Second,
			CloseTimeout: 5 * time.Second, SubscribeTimeout: 5 * time.Second, JetStream: js,
		}, logger)
		require.NoError(t, err)
		defer theirs.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch, err := theirs.Subscribe(ctx, topic)
		require.NoError(t, err)
		msgs := interopMessages()
		require.NoError(t, pub.Publish(topic, msgs...))
		requireSameMessages(t, msgs, receiveAll(t, ch, len(msgs)))
	})

	t.Run("theirs to ours", func(t *testing.T) {
		const topic = "interop_mode_theirs"
		sub, err := jetstream.NewSubscriber(testConfig("ours"), nc, nil, nil)
		require.NoError(t, err)
		defer sub.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch, err := sub.Subscribe(ctx, topic)
		require.NoError(t, err)
		theirs, err := wmnats.NewPublisher(wmnats.PublisherConfig{URL: srv.URL(), JetStream: js}, logger)
		require.NoError(t, err)
		defer theirs.Close()
		msgs := interopMessages()
		require.NoError(t, theirs.Publish(topic, msgs...))
		requireSameMessages(t, msgs, receiveAll(t, ch, len(msgs)))
	})
}
