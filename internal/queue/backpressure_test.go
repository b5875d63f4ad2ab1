package queue_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/queue"
)

// A full queue makes Publish wait for room until the message's context ends
// (block) or fail at once (reject). Either way nothing accepted is lost once
// the consumer resumes. The bubble's fake clock measures the wait exactly.
func TestBackpressure(t *testing.T) {
	const (
		queueSize = 10
		deadline  = 50 * time.Millisecond
	)
	tests := []struct {
		onFull   queue.OnFull
		wantWait time.Duration
		wantErr  error // besides ErrQueueFull
	}{
		{onFull: queue.Block, wantWait: deadline, wantErr: context.DeadlineExceeded},
		{onFull: queue.Reject, wantWait: 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.onFull), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBroker(t, queue.Config{QueueSize: queueSize, OnFull: tt.onFull})
				msgs, err := b.Subscribe(t.Context(), "t")
				require.NoError(t, err)

				// The consumer takes the first message and stalls on it.
				require.NoError(t, b.Publish("t", keyed("m0", "k0", "0")))
				held := receive(t, msgs)
				for i := 1; i < queueSize; i++ {
					k := strconv.Itoa(i)
					require.NoError(t, b.Publish("t", keyed("m"+k, "k"+k, k)), "message %d of %d fits", i+1, queueSize)
				}

				ctx, cancel := context.WithTimeout(t.Context(), deadline)
				defer cancel()
				extra := keyed("extra", "k-extra", "x")
				extra.SetContext(ctx)
				start := time.Now()
				err = b.Publish("t", extra)
				waited := time.Since(start)

				require.ErrorIs(t, err, queue.ErrQueueFull)
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
				} else {
					require.NotErrorIs(t, err, context.DeadlineExceeded)
				}
				require.Equal(t, tt.wantWait, waited)

				// The consumer resumes: all that was accepted arrives, the
				// rejected message does not.
				got := map[string]bool{held.UUID: true}
				held.Ack()
				for range queueSize - 1 {
					m := receive(t, msgs)
					require.False(t, got[m.UUID], "%s delivered twice", m.UUID)
					got[m.UUID] = true
					m.Ack()
				}
				synctest.Wait()
				requireNothing(t, msgs)
				require.Len(t, got, queueSize)
				require.False(t, got["extra"])

				st := b.Stats()
				require.EqualValues(t, queueSize, st.Published)
				require.EqualValues(t, queueSize, st.Acked)
				require.Zero(t, st.Queued)
			})
		})
	}
}

// A blocked Publish goes through as soon as an ack makes room.
func TestBackpressureReleasedByAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, queue.Config{QueueSize: 2})
		msgs, err := b.Subscribe(t.Context(), "t")
		require.NoError(t, err)
		require.NoError(t, b.Publish("t", keyed("a", "k", "a"), keyed("b", "k", "b")))
		first := receive(t, msgs)

		published := make(chan error, 1)
		go func() { published <- b.Publish("t", keyed("c", "k", "c")) }()
		synctest.Wait()
		select {
		case err := <-published:
			t.Fatalf("Publish returned %v with the queue full", err)
		default:
		}

		first.Ack()
		require.NoError(t, <-published)
		for _, want := range []string{"b", "c"} {
			m := receive(t, msgs)
			require.Equal(t, want, m.UUID)
			m.Ack()
		}
	})
}

// PublishContext bounds the wait with its own context, not the message's.
func TestPublishContextBoundsTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, queue.Config{QueueSize: 1})
		require.NoError(t, b.Publish("t", keyed("a", "", "a")))
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		err := b.PublishContext(ctx, "t", keyed("b", "", "b"))
		require.ErrorIs(t, err, queue.ErrQueueFull)
		require.True(t, errors.Is(err, context.DeadlineExceeded))
		require.Equal(t, time.Second, time.Since(start))
	})
}
