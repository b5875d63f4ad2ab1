package redisstream

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"
)

// TestHonoursDeadlines: a publish is sent from its caller's goroutine only
// on a client that ends calls at their context's deadline.
func TestHonoursDeadlines(t *testing.T) {
	for _, c := range []struct {
		name   string
		client redis.UniversalClient
		want   bool
	}{
		{"client", redis.NewClient(&redis.Options{ContextTimeoutEnabled: true}), true},
		{"client without", redis.NewClient(&redis.Options{}), false},
		{"cluster", redis.NewClusterClient(&redis.ClusterOptions{ContextTimeoutEnabled: true}), true},
		{"cluster without", redis.NewClusterClient(&redis.ClusterOptions{}), false},
		{"ring", redis.NewRing(&redis.RingOptions{ContextTimeoutEnabled: true}), true},
		{"ring without", redis.NewRing(&redis.RingOptions{}), false},
		{"sentinel master", redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "m", ContextTimeoutEnabled: true}), true},
		{"made from a Config", func() redis.UniversalClient {
			c, _, err := clientFor(&Config{URL: "redis://127.0.0.1:1/0"}, nil, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}(), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer c.client.Close()
			if got := honoursDeadlines(c.client); got != c.want {
				t.Fatalf("honoursDeadlines = %v, want %v", got, c.want)
			}
		})
	}
}
