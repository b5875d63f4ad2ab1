package bus_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// TestOverRedisStreams: the bus publishes on Redis Streams and Handle reads
// them back through the consumer group, every event once and in per-key
// order.
func TestOverRedisStreams(t *testing.T) {
	srv := redistest.Start(t)
	cfg, err := bus.LoadConfig(bus.FromMap(map[string]any{
		"transports": map[string]any{"redis": map[string]any{
			"type": "redisstream", "url": srv.URL(), "consumer_group": "hub", "start_id": "0",
		}},
		"routing": map[string]any{"baseline": "redis"},
		"consume": map[string]any{"from": []any{"redis"}},
	}))
	require.NoError(t, err)
	b, err := bus.New(cfg, quiet)
	require.NoError(t, err)

	const keys, perKey = 10, 100
	var (
		mu   sync.Mutex
		next = map[string]int{}
		bad  []string
		all  = make(chan struct{})
		got  int
	)
	require.NoError(t, b.Handle("hub", "events:chat", func(m *message.Message) error {
		key := m.Metadata.Get(bus.MetaEventKey)
		seq, _ := strconv.Atoi(string(m.Payload))
		mu.Lock()
		defer mu.Unlock()
		if seq != next[key] {
			bad = append(bad, key+": got "+strconv.Itoa(seq)+", want "+strconv.Itoa(next[key]))
		}
		next[key] = seq + 1
		got++
		if got == keys*perKey {
			close(all)
		}
		assert.Equal(t, "redis", m.Metadata.Get(bus.MetaTransport))
		return nil
	}))
	start(t, b)
	for i := range perKey {
		for k := range keys {
			require.NoError(t, b.Publish("events:chat", bus.NewMessage("chat_message", "conv-"+strconv.Itoa(k), []byte(strconv.Itoa(i)))))
		}
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		mu.Lock()
		t.Fatalf("received %d of %d", got, keys*perKey)
	}
	mu.Lock()
	assert.Empty(t, bad, "per-key order")
	mu.Unlock()
	assert.Equal(t, strconv.Itoa(keys*perKey), srv.Do(t, "XLEN", "events:chat"))
}
