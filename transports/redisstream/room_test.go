package redisstream

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
)

// The reader and the claim loop both wait for room when the subscription
// holds its limit. Every entry let go while both have found it full, and
// before either waits, must still wake both: a reader left waiting with
// nothing held would never read again.
func TestWaitRoomWakesEveryWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		paused := make(chan struct{})
		release := make(chan struct{})
		sub := &subscription{
			ctx:   ctx,
			held:  map[string]struct{}{"1-0": {}, "2-0": {}},
			limit: 2,
			acks:  make(chan string, 2),
			roomWaitHook: func() {
				paused <- struct{}{}
				<-release
			},
		}
		var returned atomic.Int32
		for range 2 { // the reader and the claim loop
			go func() {
				if sub.waitRoom() {
					returned.Add(1)
				}
			}()
		}
		<-paused
		<-paused // both found it full and are about to wait
		sub.ack("1-0")
		sub.ack("2-0")
		close(release)
		synctest.Wait()
		require.EqualValues(t, 2, returned.Load(), "a waiter was left waiting for room that was made")
	})
}
