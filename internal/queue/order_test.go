package queue_test

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/metakey"
	"github.com/switchyard-go/switchyard/internal/queue"
)

// Messages that share a key arrive in publish order, even when the consumer
// handles them concurrently: the next message of a key is delivered only
// after the previous one was acked.
func TestPerKeyOrder(t *testing.T) {
	const (
		keys       = 100
		perKey     = 1000
		publishers = 8
		total      = keys * perKey
	)

	tests := []struct {
		name        string
		subscribers int // subscriptions in the one consumer group
	}{
		{name: "goroutine per message", subscribers: 1},
		{name: "subscribers sharing a group", subscribers: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBroker(t, queue.Config{})
			const topic = "ordered"

			type keyState struct {
				mu   sync.Mutex
				next int // sequence number expected next
			}
			var (
				state    [keys]keyState
				received atomic.Int64
				failures atomic.Int64
				all      = make(chan struct{})
			)
			handle := func(m *message.Message) {
				defer m.Ack()
				k, err := strconv.Atoi(m.Metadata.Get(metakey.EventKey))
				if err != nil {
					t.Errorf("message %s: bad key: %v", m.UUID, err)
					failures.Add(1)
					return
				}
				seq, err := strconv.Atoi(string(m.Payload))
				if err != nil {
					t.Errorf("message %s: bad payload: %v", m.UUID, err)
					failures.Add(1)
					return
				}
				s := &state[k]
				s.mu.Lock()
				want := s.next
				if seq == want {
					s.next++
				}
				s.mu.Unlock()
				// A tiny, random amount of work, so handlers finish out of
				// the order they started in.
				for range rand.IntN(4) {
					runtime.Gosched()
				}
				if seq != want {
					if failures.Add(1) <= 10 {
						t.Errorf("key %d: got sequence %d, want %d (duplicate or out of order)", k, seq, want)
					}
					return
				}
				if received.Add(1) == total {
					close(all)
				}
			}

			var consumers sync.WaitGroup
			for range tt.subscribers {
				msgs, err := b.Subscribe(t.Context(), topic)
				require.NoError(t, err)
				consumers.Go(func() {
					for m := range msgs {
						go handle(m)
					}
				})
			}

			var pubs sync.WaitGroup
			for p := range publishers {
				pubs.Go(func() {
					// Publisher p owns the keys k with k%publishers == p, so
					// each key's publish order is defined.
					for seq := range perKey {
						for k := p; k < keys; k += publishers {
							m := message.NewMessage(strconv.Itoa(k)+"-"+strconv.Itoa(seq), []byte(strconv.Itoa(seq)))
							m.Metadata.Set(metakey.EventKey, strconv.Itoa(k))
							if err := b.Publish(topic, m); err != nil {
								t.Errorf("publish: %v", err)
								return
							}
						}
					}
				})
			}
			pubs.Wait()

			select {
			case <-all:
			case <-time.After(waitFor):
				t.Errorf("timed out with %d of %d messages", received.Load(), total)
			}
			require.Zero(t, failures.Load())
			require.EqualValues(t, total, received.Load())
			for k := range state {
				require.Equal(t, perKey, state[k].next, "key %d", k)
			}
			require.NoError(t, b.Close())
			consumers.Wait()

			st := b.Stats()
			require.EqualValues(t, total, st.Published)
			require.EqualValues(t, total, st.Acked)
			require.EqualValues(t, total, st.Delivered, "nothing delivered twice")
			require.Zero(t, st.Queued)
		})
	}
}
