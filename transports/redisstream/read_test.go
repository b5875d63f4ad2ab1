package redisstream_test

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// TestReadCountBatches: one XREADGROUP hands over up to read_count entries,
// so 10,000 messages take a few dozen reads, not 10,000.
func TestReadCountBatches(t *testing.T) {
	srv := redistest.Start(t)
	const stream, total = "events:batch", 10000
	cfg := opsConfig(srv.URL(), "hub")
	cfg.ReadCount = 500
	cfg.MaxLen = 2 * total
	pub := opsPublisher(t, cfg)
	publishN(t, pub, stream, "m", total)

	sub, _ := opsSubscriber(t, cfg)
	start := time.Now()
	got := receiveAck(t, subscribe(t, sub, stream), total, 30*time.Second)
	require.Equal(t, payloads("m", total), got)
	took := time.Since(start)
	reads := commandCalls(t, srv, "xreadgroup")
	t.Logf("%d messages in %v with %d XREADGROUPs", total, took, reads)
	require.Less(t, reads, total/100, "reads ≪ messages")
	require.GreaterOrEqual(t, reads, total/int(cfg.ReadCount), "no read returns more than read_count")
}

// TestPerKeyOrder: messages handled concurrently keep their order per
// event_key: the next of a key is handed out only after the previous one
// was acked, while other keys go on.
func TestPerKeyOrder(t *testing.T) {
	srv := redistest.Start(t)
	const stream, keys, perKey = "events:order", 10, 100
	cfg := opsConfig(srv.URL(), "hub")
	cfg.ReadCount = 64
	pub := opsPublisher(t, cfg)
	var msgs []*message.Message
	for i := range perKey {
		for k := range keys {
			msgs = append(msgs, msg(strconv.Itoa(i), "event_key", fmt.Sprintf("key-%d", k)))
		}
	}
	for len(msgs) > 0 { // interleaved: key-0/0, key-1/0, …, key-9/0, key-0/1, …
		n := min(100, len(msgs))
		require.NoError(t, pub.Publish(stream, msgs[:n]...))
		msgs = msgs[n:]
	}

	sub, _ := opsSubscriber(t, cfg)
	ch := subscribe(t, sub, stream)
	var (
		mu       sync.Mutex
		seen     = map[string][]int{}
		inFlight atomic.Int32
		maxIn    atomic.Int32
		handlers sync.WaitGroup
	)
	for range keys * perKey {
		m := receive(t, ch, 10*time.Second)
		key := m.Metadata.Get("event_key")
		n, err := strconv.Atoi(string(m.Payload))
		require.NoError(t, err)
		mu.Lock()
		seen[key] = append(seen[key], n)
		mu.Unlock()
		handlers.Go(func() { // concurrent handlers, acking in any order
			cur := inFlight.Add(1)
			for old := maxIn.Load(); cur > old && !maxIn.CompareAndSwap(old, cur); old = maxIn.Load() {
			}
			time.Sleep(time.Duration(n%3) * time.Millisecond) // handling takes a while
			inFlight.Add(-1)
			m.Ack()
		})
	}
	handlers.Wait()
	require.Len(t, seen, keys)
	for key, got := range seen {
		for i, n := range got {
			require.Equal(t, i, n, "%s: out of order: %v", key, got)
		}
	}
	require.Greater(t, maxIn.Load(), int32(1), "keys were handled concurrently")
	t.Logf("up to %d messages in flight at once", maxIn.Load())
}
