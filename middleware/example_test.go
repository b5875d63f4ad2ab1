package middleware_test

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/middleware"
)

// A rollout of 25% of keys to Redis Streams: each key's bucket decides, and
// keeps deciding, its path; raising the percentage only moves keys to the
// candidate.
func ExampleNewSplit() {
	split, err := middleware.NewSplit(middleware.SplitConfig{
		Baseline:   "http",
		Candidate:  "redis",
		Enabled:    true,
		Percentage: 25,
	})
	if err != nil {
		panic(err)
	}
	for _, key := range []string{"a", "req-123"} {
		m := message.NewMessage(key, nil)
		m.Metadata.Set("event_key", key)
		fmt.Printf("%s: bucket %d, %s\n", key, middleware.Bucket("", key), split.Choose(m))
	}

	cfg := split.Config()
	cfg.Percentage = 100
	if err := split.Update(cfg); err != nil {
		panic(err)
	}
	m := message.NewMessage("req-123", nil)
	m.Metadata.Set("event_key", "req-123")
	fmt.Println("req-123 at 100%:", split.Choose(m))
	// Output:
	// a: bucket 1996, redis
	// req-123: bucket 8990, http
	// req-123 at 100%: redis
}

// A publish on Redis Streams fails: the message goes to HTTP instead, and
// its key stays there for the cooldown.
func ExampleNewFallback() {
	fallback, err := middleware.NewFallback(middleware.FallbackConfig{Enabled: true, To: "http"},
		middleware.WithOnFallback(func(m *message.Message, from, to, reason string, err error) {
			fmt.Printf("%s: %s → %s (%s), error: %v\n", m.UUID, from, to, reason, err)
		}))
	if err != nil {
		panic(err)
	}
	publish := fallback.Middleware(func(m *message.Message) ([]*message.Message, error) {
		if m.Metadata.Get("transport") == "redis" {
			return nil, errors.New("connection refused")
		}
		fmt.Printf("%s published on %s\n", m.UUID, m.Metadata.Get("transport"))
		return nil, nil
	})

	m := message.NewMessage("message-1", []byte("hello"))
	m.Metadata.Set("event_key", "conversation-7")
	m.Metadata.Set("transport", "redis") // as Split chose
	if _, err := publish(m); err != nil {
		panic(err)
	}
	fmt.Println("keys held on the fallback:", fallback.Held())
	// Output:
	// message-1 published on http
	// message-1: redis → http (error), error: <nil>
	// keys held on the fallback: 1
}
