package bus_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// TestCloseDeliversWhatAReceiverQueued: a hub consuming from an HTTP
// receiver in queue mode has answered 202 for events its slow handler has
// not had yet. Its Close hands them all to the handler before it stops the
// handlers, rather than stopping them first and leaving the receiver
// nobody to deliver to.
func TestCloseDeliversWhatAReceiverQueued(t *testing.T) {
	const events = 20
	hubCfg, err := bus.LoadConfig(bus.FromMap(map[string]any{
		"transports": map[string]any{
			"http": map[string]any{"type": "http", "receiver": map[string]any{
				"listen": "127.0.0.1:0", "queue_size": 100, "drain_timeout": "10s",
			}},
		},
		"bus":     map[string]any{"close_timeout": "10s"},
		"consume": map[string]any{"from": []any{"http"}},
	}))
	require.NoError(t, err)
	hub, err := bus.New(hubCfg, quiet)
	require.NoError(t, err)
	var handled atomic.Int64
	require.NoError(t, hub.Handle("hub", "events:chat", func(*message.Message) error {
		time.Sleep(20 * time.Millisecond) // the handler's own work, not a synchronisation
		handled.Add(1)
		return nil
	}))
	hubDone := make(chan error, 1)
	go func() { hubDone <- hub.Run(context.Background()) }()
	<-hub.Running()
	tr, ok := hub.Transport("http")
	require.True(t, ok)
	addr := tr.Subscriber.(*httptransport.Server).Addr().(*net.TCPAddr).String()

	app := newBus(t, func(c *bus.Config) {
		c.Transports["http"] = map[string]any{"type": "http", "url": "http://" + addr + "/api/v1/events/{topic}"}
		c.Routing.Baseline = "http"
	})
	start(t, app)
	for i := range events {
		// Answered 202 once queued at the hub.
		require.NoError(t, app.PublishSync(t.Context(), "events:chat", bus.NewMessage("chat_message", "k", []byte{byte(i)})))
	}
	require.Less(t, handled.Load(), int64(events), "the hub's handler is behind when it closes")

	require.NoError(t, hub.Close(), "every event the receiver accepted was delivered")
	assert.Equal(t, int64(events), handled.Load())
	require.NoError(t, <-hubDone)
}
