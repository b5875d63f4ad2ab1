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

type ctxKey struct{}

func newDelivery(t *testing.T) (*deliveryCtx, context.CancelFunc) {
	t.Helper()
	sub, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	t.Cleanup(cancel)
	return &deliveryCtx{Context: sub}, cancel
}

func requireDone(t *testing.T, c context.Context, want error) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed")
	}
	if err := c.Err(); !errors.Is(err, want) {
		t.Fatalf("Err = %v, want %v", err, want)
	}
}

func requireNotDone(t *testing.T, c context.Context) {
	t.Helper()
	select {
	case <-c.Done():
		t.Fatal("Done closed")
	default:
	}
	if err := c.Err(); err != nil {
		t.Fatalf("Err = %v, want nil", err)
	}
}

// TestDeliveryCtx: a delivery's context is the subscription's until the
// delivery ends or the subscription does, whether Done is asked for before
// that, after it, or never.
func TestDeliveryCtx(t *testing.T) {
	t.Run("ended, Done asked before", func(t *testing.T) {
		c, _ := newDelivery(t)
		if c.Value(ctxKey{}) != "v" {
			t.Fatal("values of the subscription's context are lost")
		}
		done := c.Done()
		requireNotDone(t, c)
		c.end(context.Canceled)
		<-done
		requireDone(t, c, context.Canceled)
		c.end(context.DeadlineExceeded) // the first end counts
		requireDone(t, c, context.Canceled)
	})
	t.Run("ended, Done asked after", func(t *testing.T) {
		c, _ := newDelivery(t)
		c.end(context.Canceled)
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err = %v before Done was asked for", err)
		}
		requireDone(t, c, context.Canceled)
	})
	t.Run("subscription ended, Done asked before", func(t *testing.T) {
		c, cancel := newDelivery(t)
		_ = c.Done()
		cancel()
		requireDone(t, c, context.Canceled)
	})
	t.Run("subscription ended, Done never asked", func(t *testing.T) {
		c, cancel := newDelivery(t)
		cancel()
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err = %v", err)
		}
		c.end(context.Canceled)
		requireDone(t, c, context.Canceled)
	})
	t.Run("subscription deadline", func(t *testing.T) {
		sub, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		c := &deliveryCtx{Context: sub}
		requireDone(t, c, context.DeadlineExceeded)
		c.end(context.Canceled)
		requireDone(t, c, context.DeadlineExceeded)
	})
	t.Run("children end with it", func(t *testing.T) {
		c, _ := newDelivery(t)
		child, cancel := context.WithCancel(c)
		defer cancel()
		stopped := make(chan struct{})
		context.AfterFunc(c, func() { close(stopped) })
		requireNotDone(t, child)
		c.end(context.Canceled)
		requireDone(t, child, context.Canceled)
		<-stopped
	})
	t.Run("ended before the subscription: untied from it", func(t *testing.T) {
		c, cancel := newDelivery(t)
		_ = c.Done()
		c.end(context.Canceled)
		if c.stop() {
			t.Fatal("still tied to the subscription's context")
		}
		cancel()
		requireDone(t, c, context.Canceled)
	})
}

// TestDeliveryCtxAfterFunc: AfterFunc has context.AfterFunc's semantics.
func TestDeliveryCtxAfterFunc(t *testing.T) {
	ran := func() (func(), <-chan struct{}) {
		ch := make(chan struct{})
		return func() { close(ch) }, ch // a second run panics
	}
	requireRuns := func(t *testing.T, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("f did not run")
		}
	}
	t.Run("runs once the delivery ends", func(t *testing.T) {
		c, _ := newDelivery(t)
		f, ch := ran()
		stop := c.AfterFunc(f)
		requireNotDone(t, c)
		c.end(context.Canceled)
		requireRuns(t, ch)
		c.end(context.Canceled)
		if stop() {
			t.Fatal("stop after f ran reports it stopped f")
		}
	})
	t.Run("runs once the subscription ends", func(t *testing.T) {
		c, cancel := newDelivery(t)
		f, ch := ran()
		c.AfterFunc(f)
		cancel()
		requireRuns(t, ch)
	})
	t.Run("runs at once when ended already", func(t *testing.T) {
		c, _ := newDelivery(t)
		c.end(context.Canceled)
		f, ch := ran()
		stop := c.AfterFunc(f)
		requireRuns(t, ch)
		if stop() {
			t.Fatal("stop reports it stopped f, which ran")
		}
	})
	t.Run("stopped", func(t *testing.T) {
		c, _ := newDelivery(t)
		stop := c.AfterFunc(func() { t.Error("a stopped f ran") })
		if !stop() {
			t.Fatal("stop before the end does not report it stopped f")
		}
		if stop() {
			t.Fatal("a second stop reports it stopped f")
		}
		c.end(context.Canceled)
		// If f ran, it would run in a goroutine of its own: one more
		// AfterFunc, which runs after it would have started, is the sync.
		g, ch := ran()
		c.AfterFunc(g)
		requireRuns(t, ch)
	})
	t.Run("never asked: no tie to the subscription", func(t *testing.T) {
		c, _ := newDelivery(t)
		c.end(context.Canceled)
		if c.stop != nil || c.done != nil {
			t.Fatal("a delivery nobody asked Done or AfterFunc of paid for them")
		}
	})
}

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
