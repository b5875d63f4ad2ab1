package gochannel_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/go-viper/mapstructure/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard-go/switchyard/transports"
	"github.com/switchyard-go/switchyard/transports/gochannel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// decodeFrom stands in for the bus's koanf decoding of a transport section:
// koanf tags, and unknown keys are an error that names them.
func decodeFrom(section map[string]any) func(any) error {
	return func(target any) error {
		d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
			TagName:     "koanf",
			ErrorUnused: true,
			Result:      target,
		})
		if err != nil {
			return err
		}
		return d.Decode(section)
	}
}

// build builds a gochannel transport through a registry of its own, as the
// bus does from a configuration.
func build(t *testing.T, section map[string]any) (transports.Transport, error) {
	t.Helper()
	r := transports.NewRegistry()
	r.Register(gochannel.Name, gochannel.Factory)
	factory, err := r.Lookup(gochannel.Name)
	require.NoError(t, err)
	return factory(transports.Settings{
		Name:       "legacy",
		Decode:     decodeFrom(section),
		Logger:     watermill.NopLogger{},
		Registerer: prometheus.NewRegistry(),
	})
}

func mustBuild(t *testing.T, section map[string]any) (message.Publisher, message.Subscriber) {
	t.Helper()
	tr, err := build(t, section)
	require.NoError(t, err)
	require.NotNil(t, tr.Publisher)
	require.NotNil(t, tr.Subscriber)
	require.Same(t, tr.Publisher, tr.Subscriber, "one GoChannel is both sides")
	return tr.Publisher, tr.Subscriber
}

func TestRegisteredByInit(t *testing.T) {
	require.Contains(t, transports.Names(), gochannel.Name)
	_, err := transports.Default().Lookup("gochannel")
	require.NoError(t, err)
}

func TestFactoryConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		section map[string]any
		wantErr string
	}{
		{name: "unknown key", section: map[string]any{"persistant": true}, wantErr: "persistant"},
		{name: "wrong type", section: map[string]any{"persistent": "very"}, wantErr: "persistent"},
		{name: "negative buffer", section: map[string]any{"output_channel_buffer": -1}, wantErr: "output_channel_buffer: must not be negative, got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := build(t, tt.section)
			require.ErrorContains(t, err, "gochannel: config: ")
			require.ErrorContains(t, err, tt.wantErr)
			require.Nil(t, tr.Publisher)
			require.Nil(t, tr.Subscriber)
		})
	}
}

// The config check reports each bad key as a *transports.FieldError keyed
// within the section, which the bus names by its full key.
func TestValidateFieldErrors(t *testing.T) {
	err := gochannel.Config{OutputChannelBuffer: -1}.Validate()
	fields, only := transports.FieldErrors(err)
	require.True(t, only, "nothing but field errors: %v", err)
	require.Len(t, fields, 1)
	require.Equal(t, "output_channel_buffer", fields[0].Key)
	require.Equal(t, "must not be negative, got -1", fields[0].Reason)

	_, err = build(t, map[string]any{"output_channel_buffer": -1})
	fields, _ = transports.FieldErrors(err)
	require.Len(t, fields, 1, "through the factory: %v", err)
	require.NoError(t, gochannel.Config{}.Validate())
}

// The settings reach the GoChannel: each subtest shows the behaviour one of
// them switches.
func TestFactoryAppliesConfig(t *testing.T) {
	t.Run("not persistent drops what no one subscribed to", func(t *testing.T) {
		pub, sub := mustBuild(t, map[string]any{})
		defer closeBoth(t, pub, sub)
		require.NoError(t, pub.Publish("t", message.NewMessage("lost", nil)))
		msgs, err := sub.Subscribe(t.Context(), "t")
		require.NoError(t, err)
		require.NoError(t, pub.Publish("t", message.NewMessage("kept", nil)))
		m := <-msgs
		m.Ack()
		require.Equal(t, "kept", m.UUID)
	})

	t.Run("persistent replays to a late subscriber", func(t *testing.T) {
		pub, sub := mustBuild(t, map[string]any{"persistent": true, "output_channel_buffer": 10})
		defer closeBoth(t, pub, sub)
		require.NoError(t, pub.Publish("t", message.NewMessage("early", nil)))
		msgs, err := sub.Subscribe(t.Context(), "t")
		require.NoError(t, err)
		m := <-msgs
		m.Ack()
		require.Equal(t, "early", m.UUID)
	})

	t.Run("block_publish_until_subscriber_ack", func(t *testing.T) {
		pub, sub := mustBuild(t, map[string]any{"block_publish_until_subscriber_ack": true})
		defer closeBoth(t, pub, sub)
		msgs, err := sub.Subscribe(t.Context(), "t")
		require.NoError(t, err)
		published := make(chan error, 1)
		go func() { published <- pub.Publish("t", message.NewMessage("1", nil)) }()
		m := <-msgs
		select {
		case err := <-published:
			t.Fatalf("Publish returned (%v) before the ack", err)
		default:
		}
		m.Ack()
		require.NoError(t, <-published)
	})

	t.Run("preserve_context", func(t *testing.T) {
		type ctxKey struct{}
		for _, preserve := range []bool{false, true} {
			pub, sub := mustBuild(t, map[string]any{"preserve_context": preserve})
			msgs, err := sub.Subscribe(t.Context(), "t")
			require.NoError(t, err)
			sent := message.NewMessage("1", nil)
			sent.SetContext(context.WithValue(t.Context(), ctxKey{}, "from publisher"))
			require.NoError(t, pub.Publish("t", sent))
			m := <-msgs
			got, _ := m.Context().Value(ctxKey{}).(string)
			m.Ack()
			closeBoth(t, pub, sub)
			if preserve {
				require.Equal(t, "from publisher", got)
			} else {
				require.Empty(t, got)
			}
		}
	})
}

func closeBoth(t *testing.T, pub message.Publisher, sub message.Subscriber) {
	t.Helper()
	require.NoError(t, pub.Close())
	require.NoError(t, sub.Close())
}

func TestPubSub(t *testing.T) {
	for _, preserveContext := range []bool{false, true} {
		name := "context_not_preserved"
		if preserveContext {
			name = "context_preserved"
		}
		t.Run(name, func(t *testing.T) {
			features := tests.Features{
				// Every subscriber of a topic gets every message; there is no
				// way to share a topic's messages among subscribers.
				ConsumerGroups: false,
				// Within its one process a message reaches each subscriber
				// once; only a nack sends it again. (One held by a subscriber
				// that closes is dropped: at most once, which no test of the
				// suite exercises.)
				ExactlyOnceDelivery: true,
				// Each message is sent from its own goroutine.
				GuaranteedOrder: false,
				// In Watermill's sense: nothing is shared between two
				// GoChannel instances. The persistent setting below is a
				// replay to late subscribers of one instance, not this.
				Persistent: false,
				// Publisher and subscriber must be the same GoChannel.
				RequireSingleInstance: true,
				// Within one persistent instance a new subscriber does get
				// old messages, but the suite's test builds a new instance
				// for each subscriber, and instances share nothing.
				NewSubscriberReceivesOldMessages: false,
				// Only when preserve_context is set.
				ContextPreserved: preserveContext,
			}
			// As Watermill tests its own GoChannel: persistent, so messages
			// the suite publishes before subscribing are not dropped.
			section := map[string]any{
				"output_channel_buffer": 10000,
				"persistent":            true,
				"preserve_context":      preserveContext,
			}
			tests.TestPubSub(t, features,
				func(t *testing.T) (message.Publisher, message.Subscriber) { return mustBuild(t, section) },
				nil,
			)
		})
	}
}
