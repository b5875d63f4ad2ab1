package redisstream

import (
	"context"
	"errors"
	"testing"
	"time"
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
