package timerpool

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestPutTimerDoesNotFireAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fired := Get(time.Second)
		time.Sleep(2 * time.Second) // the fake clock: the timer has fired, unread
		Put(fired)
		next := Get(time.Hour)
		defer Put(next)
		select {
		case <-next.C:
			t.Fatal("a timer from the pool delivered an earlier expiry")
		default:
		}
		time.Sleep(time.Hour)
		select {
		case <-next.C:
		default:
			t.Fatal("the timer did not fire after its duration")
		}
	})
}
