// Package timerpool keeps stopped timers for reuse, so that a publish that
// waits until its deadline costs no timer allocation (a context.WithTimeout
// costs three).
package timerpool

import (
	"sync"
	"time"
)

var pool sync.Pool

// Get returns a timer that fires after d.
func Get(d time.Duration) *time.Timer {
	if t, ok := pool.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

// Put stops t and keeps it for a later Get. Its channel is drained, so the
// next Get cannot read t's expiry (since Go 1.23 a stopped timer's channel
// holds nothing anyway, unless GODEBUG asynctimerchan=1).
func Put(t *time.Timer) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	pool.Put(t)
}
