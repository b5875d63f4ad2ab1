package lane

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/goleak"

	"github.com/switchyard-go/switchyard/internal/delivery"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type item struct {
	key, id string
}

// source records what the scheduler tells it; giveUp is the attempts at
// which Nacked is done with an item (0: never).
type source struct {
	giveUp int

	mu       sync.Mutex
	attempts []int // the attempts Message was asked for, in order
	acked    []string
	nacked   []string
}

func (s *source) Message(it *item, attempts int) (*message.Message, *delivery.Context) {
	s.mu.Lock()
	s.attempts = append(s.attempts, attempts)
	s.mu.Unlock()
	m := message.NewMessage(it.id, nil)
	m.Metadata.Set("key", it.key)
	return m, &delivery.Context{}
}

func (s *source) Acked(it *item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acked = append(s.acked, it.id)
}

func (s *source) Nacked(it *item, attempts int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nacked = append(s.nacked, it.id)
	return s.giveUp > 0 && attempts >= s.giveUp
}

func (s *source) got() (acked, nacked []string, attempts []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acked), slices.Clone(s.nacked), slices.Clone(s.attempts)
}

// start runs a scheduler of lanes lanes on src until the test's end.
func start(t *testing.T, src *source, cfg Config) (*Scheduler[*item], <-chan *message.Message) {
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan *message.Message)
	s := NewScheduler[*item](ctx, out, src, cfg)
	var wg sync.WaitGroup
	s.Start(&wg)
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		s.Stop()
	})
	return s, out
}

// TestOneAtATimePerKey: a key's next item is handed out once its previous
// is acked; another key's meanwhile.
func TestOneAtATimePerKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{}
		s, out := start(t, src, Config{Lanes: 64})
		a, b := "a", "b"
		if Of(a, 64) == Of(b, 64) {
			t.Fatal("the test needs keys in different lanes")
		}
		s.Push(a, &item{a, "a1"})
		s.Push(a, &item{a, "a2"})
		s.Push(b, &item{b, "b1"})
		synctest.Wait()
		var first []*message.Message
		for range 2 {
			first = append(first, <-out)
		}
		synctest.Wait()
		select {
		case m := <-out:
			t.Fatalf("%s handed out before a1 was acked", m.UUID)
		default:
		}
		for _, m := range first {
			m.Ack()
		}
		m := <-out
		if m.UUID != "a2" {
			t.Fatalf("got %s, want a2", m.UUID)
		}
		if m.Context().Err() != nil {
			t.Fatal("a delivery's context ended before its ack")
		}
		m.Ack()
		synctest.Wait()
		if m.Context().Err() == nil {
			t.Fatal("a delivery's context outlived its ack")
		}
		acked, _, _ := src.got()
		slices.Sort(acked)
		if !slices.Equal(acked, []string{"a1", "a2", "b1"}) {
			t.Fatalf("acked %v", acked)
		}
	})
}

// TestNackRedeliversAfterBackoff: a nacked head comes back after the
// backoff, doubled each time, ahead of its lane; Nacked done with it moves
// the lane on.
func TestNackRedeliversAfterBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{giveUp: 3}
		s, out := start(t, src, Config{Lanes: 4, RetryBackoff: time.Second, MaxRetryBackoff: time.Minute})
		s.Push("k", &item{"k", "1"})
		s.Push("k", &item{"k", "2"})
		begin := time.Now()
		var at []time.Duration
		for range 3 {
			m := <-out
			if m.UUID != "1" {
				t.Fatalf("got %s, want 1 again", m.UUID)
			}
			at = append(at, time.Since(begin))
			m.Nack()
		}
		if want := []time.Duration{0, time.Second, 3 * time.Second}; !slices.Equal(at, want) {
			t.Fatalf("delivered at %v, want %v", at, want)
		}
		m := <-out
		if m.UUID != "2" {
			t.Fatalf("got %s, want 2", m.UUID)
		}
		m.Ack()
		synctest.Wait()
		acked, nacked, attempts := src.got()
		if !slices.Equal(acked, []string{"2"}) || !slices.Equal(nacked, []string{"1", "1", "1"}) || !slices.Equal(attempts, []int{0, 1, 2, 0}) {
			t.Fatalf("acked %v, nacked %v, attempts %v", acked, nacked, attempts)
		}
	})
}

// TestHandOff: with HandOff, Push hands an idle lane's head to a waiting
// handler itself, and its worker waits for the ack.
func TestHandOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{}
		s, out := start(t, src, Config{Lanes: 4, HandOff: true})
		got := make(chan *message.Message)
		go func() { got <- <-out }()
		synctest.Wait()
		if !s.Push("k", &item{"k", "1"}) {
			t.Fatal("not handed off to a waiting handler")
		}
		(<-got).Ack()
		synctest.Wait()
		if acked, _, attempts := src.got(); !slices.Equal(acked, []string{"1"}) || len(attempts) != 1 {
			t.Fatalf("acked %v, messages made %d", acked, len(attempts))
		}
		if s.Push("k", &item{"k", "2"}) {
			t.Fatal("handed off with no handler waiting")
		}
		(<-out).Ack()
	})
}

// TestEnd: when the context ends the workers end; an ack that came first is
// told, a delivery not acked is left to the Source.
func TestEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{}
		ctx, cancel := context.WithCancel(t.Context())
		out := make(chan *message.Message)
		s := NewScheduler[*item](ctx, out, src, Config{Lanes: 64})
		var wg sync.WaitGroup
		s.Start(&wg)
		s.Push("a", &item{"a", "a1"})
		s.Push("b", &item{"b", "b1"})
		m1, m2 := <-out, <-out
		m1.Ack()
		cancel()
		wg.Wait()
		s.Stop()
		if m2.Context().Err() == nil {
			t.Fatal("an unacked delivery's context outlived the scheduler's")
		}
		if acked, _, _ := src.got(); !slices.Equal(acked, []string{m1.UUID}) {
			t.Fatalf("acked %v, want %s", acked, m1.UUID)
		}
	})
}
