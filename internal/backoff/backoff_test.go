package backoff_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/internal/backoff"
)

const ms = time.Millisecond

// TestExp pins the sequences each caller produced with its own formula
// before they shared Exp: the callers' arguments carry their differences
// (where the count starts, the shift limit, the cap).
func TestExp(t *testing.T) {
	tests := []struct {
		caller    string
		base, max time.Duration
		wait      func(i int) time.Duration // the i-th wait, i from 1
		want      []time.Duration
	}{
		{
			// internal/queue: attempts counts deliveries, the first redelivery
			// waits base.
			caller: "queue redelivery", base: 10 * ms, max: time.Second,
			wait: func(attempts int) time.Duration { return backoff.Exp(10*ms, time.Second, attempts-1) },
			want: []time.Duration{10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms, time.Second, time.Second},
		},
		{
			// transports/http publisher, before jitter: attempt is 0-based.
			caller: "http publisher", base: 50 * ms, max: time.Second,
			wait: func(i int) time.Duration { return backoff.Exp(50*ms, time.Second, min(i-1, 30)) },
			want: []time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second},
		},
		{
			caller: "http receiver", base: 100 * ms, max: 10 * time.Second,
			wait: func(failures int) time.Duration { return backoff.Exp(100*ms, 10*time.Second, min(failures-1, 30)) },
			want: []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 10 * time.Second, 10 * time.Second},
		},
		{
			caller: "redisstream read", base: 50 * ms, max: time.Second,
			wait: func(failures int) time.Duration { return backoff.Exp(50*ms, time.Second, failures-1) },
			want: []time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second},
		},
		{
			caller: "redisstream nack", base: 10 * ms, max: time.Second,
			wait: func(attempts int) time.Duration { return backoff.Exp(10*ms, time.Second, min(attempts-1, 20)) },
			want: []time.Duration{10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms, time.Second, time.Second},
		},
		{
			// bus coalesce republish: the cap is never below the first wait.
			caller: "bus republish", base: 300 * ms, max: 200 * ms,
			wait: func(i int) time.Duration { return backoff.Exp(300*ms, max(200*ms, 300*ms), i-1) },
			want: []time.Duration{300 * ms, 300 * ms, 300 * ms},
		},
	}
	for _, tt := range tests {
		t.Run(tt.caller, func(t *testing.T) {
			for i, want := range tt.want {
				if got := tt.wait(i + 1); got != want {
					t.Errorf("wait %d = %s, want %s", i+1, got, want)
				}
			}
		})
	}
}

// TestExpMatchesOldFormulas compares Exp, with each caller's arguments, to
// the formula that caller used before, over a grid of settings.
func TestExpMatchesOldFormulas(t *testing.T) {
	oldQueue := func(base, limit time.Duration, attempts int) time.Duration {
		d := base
		for i := 1; i < attempts && d < limit; i++ {
			d *= 2
		}
		return min(d, limit)
	}
	oldHTTP := func(base, limit time.Duration, n int) time.Duration { // publisher (n = attempt) and receiver (n = failures-1)
		d := base << min(n, 30)
		if d <= 0 || d > limit {
			d = limit
		}
		return d
	}
	oldRedisRead := func(failures int) time.Duration {
		return min(50*ms<<min(failures-1, 5), time.Second)
	}
	oldRedisNack := func(base, limit time.Duration, attempts int) time.Duration {
		return min(base<<min(attempts-1, 20), limit)
	}
	oldRepublish := func(base, limit time.Duration, waits int) time.Duration {
		wait := max(base, ms)
		for range waits - 1 {
			wait = min(2*wait, max(limit, wait))
		}
		return wait
	}
	bases := []time.Duration{1, ms, 10 * ms, 50 * ms, 100 * ms, time.Second}
	limits := []time.Duration{ms, 30 * ms, time.Second, 10 * time.Second, time.Hour}
	for _, base := range bases {
		for _, limit := range limits {
			for i := 1; i <= 70; i++ {
				at := fmt.Sprintf("base %s max %s i %d", base, limit, i)
				if base <= limit {
					if got, want := backoff.Exp(base, limit, i-1), oldQueue(base, limit, i); got != want {
						t.Errorf("queue %s: %s, want %s", at, got, want)
					}
					if got, want := backoff.Exp(base, limit, min(i-1, 30)), oldHTTP(base, limit, i-1); got != want {
						t.Errorf("http %s: %s, want %s", at, got, want)
					}
					if got, want := backoff.Exp(base, limit, min(i-1, 20)), oldRedisNack(base, limit, i); got != want {
						t.Errorf("redis nack %s: %s, want %s", at, got, want)
					}
				}
				first := max(base, ms)
				if got, want := backoff.Exp(first, max(limit, first), i-1), oldRepublish(base, limit, i); got != want {
					t.Errorf("republish %s: %s, want %s", at, got, want)
				}
			}
		}
	}
	for failures := 1; failures <= 200; failures++ {
		if got, want := backoff.Exp(50*ms, time.Second, failures-1), oldRedisRead(failures); got != want {
			t.Errorf("redis read, failures %d: %s, want %s", failures, got, want)
		}
	}
}

func TestExpSaturates(t *testing.T) {
	for _, n := range []int{-1, 0, 62, 63, 64, 1 << 20} {
		got := backoff.Exp(time.Hour, time.Duration(1<<62), n)
		if got <= 0 || got > 1<<62 {
			t.Errorf("Exp(1h, 2^62, %d) = %d, want within (0, 2^62]", n, got)
		}
	}
	if got := backoff.Exp(5*ms, time.Second, -3); got != 5*ms {
		t.Errorf("Exp with a negative count = %s, want the base", got)
	}
}
