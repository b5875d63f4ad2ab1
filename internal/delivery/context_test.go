package delivery

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

func newDelivery(t *testing.T) (*Context, context.CancelFunc) {
	t.Helper()
	sub, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	t.Cleanup(cancel)
	return &Context{Context: sub}, cancel
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

// TestContext: a delivery's context is the subscription's until the
// delivery ends or the subscription does, whether Done is asked for before
// that, after it, or never.
func TestContext(t *testing.T) {
	t.Run("ended, Done asked before", func(t *testing.T) {
		c, _ := newDelivery(t)
		if c.Value(ctxKey{}) != "v" {
			t.Fatal("values of the subscription's context are lost")
		}
		done := c.Done()
		requireNotDone(t, c)
		c.End(context.Canceled)
		<-done
		requireDone(t, c, context.Canceled)
		c.End(context.DeadlineExceeded) // the first end counts
		requireDone(t, c, context.Canceled)
	})
	t.Run("ended, Done asked after", func(t *testing.T) {
		c, _ := newDelivery(t)
		c.End(context.Canceled)
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
		c.End(context.Canceled)
		requireDone(t, c, context.Canceled)
	})
	t.Run("subscription deadline", func(t *testing.T) {
		sub, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		c := &Context{Context: sub}
		requireDone(t, c, context.DeadlineExceeded)
		c.End(context.Canceled)
		requireDone(t, c, context.DeadlineExceeded)
	})
	t.Run("children end with it", func(t *testing.T) {
		c, _ := newDelivery(t)
		child, cancel := context.WithCancel(c)
		defer cancel()
		stopped := make(chan struct{})
		context.AfterFunc(c, func() { close(stopped) })
		requireNotDone(t, child)
		c.End(context.Canceled)
		requireDone(t, child, context.Canceled)
		<-stopped
	})
	t.Run("ended before the subscription: untied from it", func(t *testing.T) {
		c, cancel := newDelivery(t)
		_ = c.Done()
		c.End(context.Canceled)
		if c.stop() {
			t.Fatal("still tied to the subscription's context")
		}
		cancel()
		requireDone(t, c, context.Canceled)
	})
}

// TestContextAfterFunc: AfterFunc has context.AfterFunc's semantics.
func TestContextAfterFunc(t *testing.T) {
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
		c.End(context.Canceled)
		requireRuns(t, ch)
		c.End(context.Canceled)
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
		c.End(context.Canceled)
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
		c.End(context.Canceled)
		// If f ran, it would run in a goroutine of its own: one more
		// AfterFunc, which runs after it would have started, is the sync.
		g, ch := ran()
		c.AfterFunc(g)
		requireRuns(t, ch)
	})
	t.Run("never asked: no tie to the subscription", func(t *testing.T) {
		c, _ := newDelivery(t)
		c.End(context.Canceled)
		if c.stop != nil || c.done != nil {
			t.Fatal("a delivery nobody asked Done or AfterFunc of paid for them")
		}
	})
}
