package redisstream

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/internal/lane"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// TestDerivedContextsStartNoGoroutine: contexts derived from a delivered
// message's context (context.WithTimeout(msg.Context(), …)) start no
// goroutine each, and end when the delivery does.
func TestDerivedContextsStartNoGoroutine(t *testing.T) {
	srv := redistest.Start(t)
	cfg := Config{URL: srv.URL(), ConsumerGroup: "hub", Consumer: "c", StartID: "0", Block: 50 * time.Millisecond}
	pub, err := NewPublisher(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := NewSubscriber(cfg, nil, nil, NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const stream, messages, perMessage = "events:ctx", 10, 100
	ch, err := sub.Subscribe(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	// Keys of lanes of their own, so that every message is delivered at once.
	used := map[int]bool{}
	for i := 0; len(used) < messages; i++ {
		key := fmt.Sprintf("k-%d", i)
		if l := lane.Of(key, DefaultLanes); !used[l] {
			used[l] = true
			m := message.NewMessage(watermill.NewUUID(), []byte("x"))
			m.Metadata.Set(FieldEventKey, key)
			if err := pub.Publish(stream, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	var delivered []*message.Message
	for len(delivered) < messages {
		select {
		case m := <-ch:
			delivered = append(delivered, m)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d messages delivered", len(delivered), messages)
		}
	}

	before := runtime.NumGoroutine()
	derived := make([]context.Context, 0, messages*perMessage)
	for _, m := range delivered {
		for range perMessage {
			d, cancel := context.WithTimeout(m.Context(), time.Minute)
			defer cancel()
			derived = append(derived, d)
		}
	}
	if grew := runtime.NumGoroutine() - before; grew > perMessage/2 {
		t.Fatalf("%d goroutines more for %d derived contexts", grew, len(derived))
	}
	for _, d := range derived {
		if d.Err() != nil {
			t.Fatal("a derived context ended before its delivery")
		}
	}
	for _, m := range delivered {
		m.Ack()
	}
	for _, d := range derived {
		select {
		case <-d.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a derived context outlived its delivery")
		}
		if !errors.Is(d.Err(), context.Canceled) {
			t.Fatalf("Err = %v", d.Err())
		}
	}
}
