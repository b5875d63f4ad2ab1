package monotime

import (
	"testing"
	"time"
)

// Now moves with the monotonic clock: two readings a sleep apart differ by
// at least the sleep.
func TestNowMeasuresIntervals(t *testing.T) {
	before := Now()
	time.Sleep(2 * time.Millisecond) // the interval measured, not a synchronisation
	if d := Now() - before; d < 2*time.Millisecond {
		t.Fatalf("Now advanced %s over a sleep of 2ms", d)
	}
}

var sink time.Duration

// BenchmarkNow is a reading of Now; BenchmarkTimeNow, of time.Now, which
// reads the wall clock as well, for comparison.
func BenchmarkNow(b *testing.B) {
	for b.Loop() {
		sink += Now()
	}
}

func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		sink += time.Duration(time.Now().UnixNano())
	}
}
