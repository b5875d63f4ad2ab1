package coalesce

import "time"

// Clock tells the time and makes timers, so that tests can drive windows by
// hand. The default is the real clock, which inside a testing/synctest
// bubble is the bubble's fake one, so tests under synctest.Test need no
// Clock of their own.
type Clock interface {
	Now() time.Time
	// NewTimer returns a running timer that sends on its channel once d has
	// passed.
	NewTimer(d time.Duration) Timer
}

// Timer is what a Clock's NewTimer returns. It behaves as a *time.Timer
// since Go 1.23: after Stop or Reset returns, no value of an earlier
// expiry is received.
type Timer interface {
	C() <-chan time.Time
	Reset(d time.Duration) bool
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.Timer.C }

var (
	_ Clock = realClock{}
	_ Timer = realTimer{}
)
