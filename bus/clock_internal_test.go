package bus

import (
	"math/rand/v2"
	"testing"
	"time"
)

// parsePublishedAt agrees with time.Parse on what NewMessage writes, over
// three centuries of random instants and every fraction length.
func TestParsePublishedAtAgreesWithTimeParse(t *testing.T) {
	lo := time.Date(1910, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	hi := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	rng := rand.New(rand.NewPCG(1, 2))
	values := []string{
		"2024-02-29T23:59:59.999999999Z", "2000-02-29T00:00:00Z", "2100-02-28T12:00:00.5Z",
		"1970-01-01T00:00:00Z", "2026-11-27T07:14:54.1Z", "2026-12-31T23:59:59.01Z",
	}
	for range 100_000 {
		at := time.Unix(0, lo+rng.Int64N(hi-lo)).UTC()
		if rng.IntN(4) == 0 {
			at = at.Truncate(time.Duration(rng.IntN(4)+1) * time.Millisecond)
		}
		values = append(values, at.Format(time.RFC3339Nano))
	}
	for _, s := range values {
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseUTC(s)
		if !ok || got != want.UnixNano() {
			t.Fatalf("parseUTC(%q) = %d, %t; time.Parse says %d", s, got, ok, want.UnixNano())
		}
	}
}

func TestParsePublishedAtOtherLayouts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		fast bool // read by parseUTC, not time.Parse
		want int64
		ok   bool
	}{
		{"2026-01-02T03:04:05+01:00", false, time.Date(2026, 1, 2, 2, 4, 5, 0, time.UTC).UnixNano(), true},
		{"2026-01-02T03:04:05.25-00:30", false, time.Date(2026, 1, 2, 3, 34, 5, 250_000_000, time.UTC).UnixNano(), true},
		{"2026-01-02T03:04:05.123Z", true, time.Date(2026, 1, 2, 3, 4, 5, 123_000_000, time.UTC).UnixNano(), true},
		{"now", false, 0, false},
		{"0001-01-01T00:00:00Z", false, 0, false},
		{"1600-01-01T00:00:00+01:00", false, 0, false},
		{"2262-04-12T00:00:00Z", false, 0, false},
		{"2199-12-31T23:00:00-01:00", false, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(), true},
		{"", false, 0, false},
		{"2026-02-30T00:00:00Z", false, 0, false},
		{"2026-13-01T00:00:00Z", false, 0, false},
		{"2026-01-01T24:00:00Z", false, 0, false},
		{"2026-01-01T00:60:00Z", false, 0, false},
		{"2026-01-01T00:00:60Z", false, 0, false},
		{"2026-01-01T00:00:00.Z", false, 0, false},
		{"2026-01-01T00:00:00.1234567890Z", false, time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC).UnixNano(), true},
		{"2026-01-01T00:00:00,5Z", false, time.Date(2026, 1, 1, 0, 0, 0, 500_000_000, time.UTC).UnixNano(), true},
		{"2026-0a-01T00:00:00Z", false, 0, false},
		{"2026-01-01 00:00:00Z", false, 0, false},
	} {
		_, fast := parseUTC(tc.in)
		got, ok := parsePublishedAt(tc.in)
		if fast != tc.fast || ok != tc.ok || got != tc.want {
			t.Errorf("parsePublishedAt(%q) = %d, %t (fast path %t); want %d, %t (fast path %t)", tc.in, got, ok, fast, tc.want, tc.ok, tc.fast)
		}
	}
}

// FuzzParsePublishedAt: whatever parseUTC accepts, time.Parse reads the
// same.
func FuzzParsePublishedAt(f *testing.F) {
	f.Add("2026-01-02T03:04:05.123456789Z")
	f.Add("2026-01-02T03:04:05Z")
	f.Add("0000-03-01T00:00:00Z")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseUTC(s)
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("parseUTC accepted %q, time.Parse did not: %v", s, err)
		}
		if want.UnixNano() != got {
			t.Fatalf("parseUTC(%q) = %d, time.Parse says %d", s, got, want.UnixNano())
		}
	})
}

// BenchmarkParsePublishedAt is one parse of what NewMessage writes, its
// input in the cache.
func BenchmarkParsePublishedAt(b *testing.B) {
	s := time.Now().UTC().Format(time.RFC3339Nano)
	for b.Loop() {
		if _, ok := parsePublishedAt(s); !ok {
			b.Fatal("no parse")
		}
	}
}
