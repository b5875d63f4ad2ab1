package bustest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/bustest"
	_ "github.com/switchyard-go/switchyard/transports/memory" // the recording transport wraps it
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRecordsPerTopicAndType(t *testing.T) {
	b := bustest.New(t)
	require.NoError(t, b.Publish("events:chat",
		bus.NewMessage("chat_message", "c1", []byte("hello")),
		bus.NewMessage("typing", "c1", nil),
		bus.NewMessage("typing", "c2", nil),
	))
	require.NoError(t, b.Publish("events:other", bus.NewMessage("chat_message", "c3", nil)))

	b.AssertPublished(t, "events:chat", "typing", 2)
	msgs := b.WaitPublishedOfType(t, "events:chat", "chat_message", 1)
	assert.Equal(t, "c1", msgs[0].Key)
	assert.Equal(t, "hello", string(msgs[0].Payload))
	assert.Equal(t, bustest.TransportType, msgs[0].Metadata[bus.MetaTransport])
	assert.Len(t, b.WaitPublished(t, "events:other", 1), 1)
	assert.Len(t, b.Published("events:chat"), 3)

	b.Reset()
	assert.Empty(t, b.Published("events:chat"))
}

func TestHandlersReceive(t *testing.T) {
	b := bustest.New(t)
	got := make(chan string, 1)
	require.NoError(t, b.Handle("h", "events", func(m *message.Message) error {
		got <- m.Metadata.Get(bus.MetaEventType)
		return nil
	}))
	require.NoError(t, b.PublishSync(context.Background(), "events", bus.NewMessage("typing", "k", nil)))
	assert.Equal(t, "typing", <-got)
}

// fakeT records failures instead of failing the real test.
type fakeT struct {
	testing.TB
	failed []string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.failed = append(f.failed, fmt.Sprintf(format, args...))
}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = append(f.failed, fmt.Sprintf(format, args...))
}

func TestAssertPublishedFailsOnMore(t *testing.T) {
	b := bustest.New(t)
	require.NoError(t, b.PublishSync(context.Background(), "events",
		bus.NewMessage("typing", "a", nil), bus.NewMessage("typing", "b", nil)))
	f := &fakeT{TB: t}
	b.AssertPublished(f, "events", "typing", 1)
	require.Len(t, f.failed, 1)
	assert.Contains(t, f.failed[0], "2")
}

func TestWaitTimesOut(t *testing.T) {
	b := bustest.New(t, bustest.WithWaitTimeout(10_000_000)) // 10ms
	f := &fakeT{TB: t}
	b.WaitPublished(f, "events", 1)
	require.Len(t, f.failed, 1)
	assert.Contains(t, f.failed[0], "0 messages")
}
