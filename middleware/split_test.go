package middleware_test

import (
	"math"
	"strconv"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/middleware"
)

func keyed(key, eventType string) *message.Message {
	m := message.NewMessage("id-"+key, nil)
	m.Metadata.Set("event_key", key)
	m.Metadata.Set("event_type", eventType)
	return m
}

func rollout(pct float64) middleware.SplitConfig {
	return middleware.SplitConfig{Baseline: "http", Candidate: "redis", Enabled: true, Percentage: pct}
}

func TestSplitShareIsThePercentageAndSticky(t *testing.T) {
	const keys = 100000
	s, err := middleware.NewSplit(rollout(10))
	require.NoError(t, err)

	at10 := make([]string, keys)
	onRedis := 0
	for i := range keys {
		m := keyed("conversation-"+strconv.Itoa(i), "chat_message")
		at10[i] = s.Choose(m)
		if at10[i] == "redis" {
			onRedis++
		}
		require.Equal(t, at10[i], s.Choose(m), "a key must always take the same path")
	}
	share := float64(onRedis) / keys * 100
	assert.InDelta(t, 10, share, 0.5, "share of keys on the candidate at 10%%: %.3f%%", share)

	require.NoError(t, s.Update(rollout(20)))
	onRedis20, moved := 0, 0
	for i := range keys {
		got := s.Choose(keyed("conversation-"+strconv.Itoa(i), "chat_message"))
		if got == "redis" {
			onRedis20++
		}
		if at10[i] == "redis" {
			require.Equal(t, "redis", got, "raising the percentage moved key %d back to the baseline", i)
		} else if got == "redis" {
			moved++
		}
	}
	assert.InDelta(t, 20, float64(onRedis20)/keys*100, 0.5)
	assert.Equal(t, onRedis20-onRedis, moved, "only keys from the baseline moved")
}

func TestSplitEdges(t *testing.T) {
	m := func(i int) *message.Message { return keyed("k"+strconv.Itoa(i), "typing") }
	count := func(s *middleware.Split) (n int) {
		for i := range 1000 {
			if s.Choose(m(i)) == "redis" {
				n++
			}
		}
		return n
	}
	cases := []struct {
		name string
		cfg  middleware.SplitConfig
		want int
	}{
		{"zero is a hard off", rollout(0), 0},
		{"hundred is all", rollout(100), 1000},
		{"master switch off beats 100", middleware.SplitConfig{Baseline: "http", Candidate: "redis", Percentage: 100}, 0},
		{"other event types stay on the baseline", func() middleware.SplitConfig {
			c := rollout(100)
			c.EventTypes = []string{"chat_message"}
			return c
		}(), 0},
		{"listed event type moves", func() middleware.SplitConfig {
			c := rollout(100)
			c.EventTypes = []string{"chat_message", "typing"}
			return c
		}(), 1000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := middleware.NewSplit(tc.cfg)
			require.NoError(t, err)
			assert.Equal(t, tc.want, count(s))
		})
	}
}

func TestSplitBucketIsWhatChooseUses(t *testing.T) {
	for _, salt := range []string{"", "rollout-2026"} {
		cfg := rollout(37.5)
		cfg.Salt = salt
		s, err := middleware.NewSplit(cfg)
		require.NoError(t, err)
		for i := range 2000 {
			key := "k" + strconv.Itoa(i)
			b := middleware.Bucket(salt, key)
			require.True(t, b >= 0 && b < middleware.Buckets)
			want := "http"
			if b < 3750 {
				want = "redis"
			}
			require.Equal(t, want, s.Choose(keyed(key, "x")), "salt %q key %q bucket %d", salt, key, b)
		}
	}
	assert.NotEqual(t, middleware.Bucket("", "abc"), middleware.Bucket("salt", "abc"), "the salt changes the bucket")
}

func TestSplitKeylessEventsShareOnePath(t *testing.T) {
	s, err := middleware.NewSplit(rollout(50))
	require.NoError(t, err)
	first := s.Choose(keyed("", "typing"))
	for range 100 {
		require.Equal(t, first, s.Choose(keyed("", "typing")))
	}
}

func TestSplitMiddlewareMarksTheTransport(t *testing.T) {
	s, err := middleware.NewSplit(rollout(100), middleware.WithTransportKey("via"))
	require.NoError(t, err)
	var seen []string
	h := s.Middleware(func(m *message.Message) ([]*message.Message, error) {
		seen = append(seen, m.Metadata.Get("via"))
		return nil, nil
	})
	_, _ = h(keyed("a", "typing"))
	pinned := keyed("b", "typing")
	pinned.Metadata.Set("via", "memory")
	_, _ = h(pinned)
	assert.Equal(t, []string{"redis", "memory"}, seen, "an earlier stage's choice is kept")
}

func TestSplitRefusesInvalidConfigAndKeepsTheOld(t *testing.T) {
	s, err := middleware.NewSplit(rollout(100))
	require.NoError(t, err)
	for _, bad := range []middleware.SplitConfig{
		rollout(150), rollout(-1), rollout(math.NaN()),
		{Baseline: "", Candidate: "redis"},
		{Baseline: "http", Enabled: true, Percentage: 5},
	} {
		require.Error(t, s.Update(bad), "%+v", bad)
	}
	assert.Equal(t, rollout(100), s.Config())
	assert.Equal(t, "redis", s.Choose(keyed("x", "typing")))

	_, err = middleware.NewSplit(rollout(101))
	require.ErrorContains(t, err, "percentage must be between 0 and 100")
}

func BenchmarkSplitChoose(b *testing.B) {
	s, err := middleware.NewSplit(rollout(10))
	require.NoError(b, err)
	m := keyed("conversation-12345", "chat_message")
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Choose(m)
	}
}

// Buckets are sticky across versions: a key must not move when the code
// changes. These values were computed by the original implementation.
func TestSplitBucketsArePinned(t *testing.T) {
	for _, c := range []struct {
		salt, key string
		bucket    int
	}{
		{"", "req-123", 8990},
		{"", "conversation-0", 7315},
		{"", "a", 1996},
		{"", "", 6037},
		{"s1", "req-123", 4682},
		{"rollout-2026", "room-42", 5957},
		{"salt", "\xff\x00é", 1738},
		{"", "user:8d6a5ec", 3580},
	} {
		assert.Equal(t, c.bucket, middleware.Bucket(c.salt, c.key), "salt %q, key %q", c.salt, c.key)
	}
}
