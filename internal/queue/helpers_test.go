package queue_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard-go/switchyard/internal/metakey"
	"github.com/switchyard-go/switchyard/internal/queue"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor bounds every wait of a test that runs on the real clock; it is a
// failure deadline, never a synchronisation.
const waitFor = 10 * time.Second

func newBroker(t *testing.T, cfg queue.Config) *queue.Broker {
	t.Helper()
	b, err := queue.NewBroker(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b
}

func keyed(uuid, key string, payload string) *message.Message {
	m := message.NewMessage(uuid, []byte(payload))
	if key != "" {
		m.Metadata.Set(metakey.EventKey, key)
	}
	return m
}

// receive returns the next message of ch, failing the test when none comes
// within waitFor (in a synctest bubble: when the bubble deadlocks instead).
func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		require.True(t, ok, "channel closed")
		return m
	case <-time.After(waitFor):
		t.Fatal("no message")
		return nil
	}
}

// requireNothing fails if ch holds a message or is closed. Call it once
// nothing can be on the way (in a bubble: after synctest.Wait).
func requireNothing(t *testing.T, ch <-chan *message.Message) {
	t.Helper()
	select {
	case m, ok := <-ch:
		if ok {
			t.Fatalf("unexpected message %s", m.UUID)
		}
		t.Fatal("channel closed")
	default:
	}
}

// requireClosed fails unless ch is closed now.
func requireClosed(t *testing.T, ch <-chan *message.Message) {
	t.Helper()
	select {
	case m, ok := <-ch:
		require.False(t, ok, "want a closed channel, got message %v", m)
	default:
		t.Fatal("channel not closed")
	}
}
