package coalesce_test

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/coalesce"
)

// pipeline stands in for a bus: an ordered ingress that one goroutine feeds
// to the handler (coalesce middleware, then the rest, "next"), retrying a
// message whose handler fails. Republish puts a message back in the ingress.
type pipeline struct {
	mw      *coalesce.Middleware
	handler message.HandlerFunc
	ingress chan *message.Message
	done    chan struct{}

	mu         sync.Mutex
	next       []string // "payload@ms" of each message the rest of the pipeline took
	superseded []string
	fail       map[string]int           // payload → failures left
	gate       map[string]chan struct{} // payload → closed when its publish may end
}

func newPipeline(t *testing.T, cfg coalesce.MiddlewareConfig, opts ...coalesce.MiddlewareOption) *pipeline {
	t.Helper()
	p := &pipeline{
		ingress: make(chan *message.Message, 1000), done: make(chan struct{}),
		fail: map[string]int{}, gate: map[string]chan struct{}{},
	}
	start := time.Now()
	if cfg.Windows == nil {
		cfg.Windows = map[string]time.Duration{"typing": window}
	}
	republish := func(m *message.Message) error {
		p.ingress <- m
		return nil
	}
	superseded := coalesce.WithSuperseded(func(m *message.Message) {
		p.mu.Lock()
		p.superseded = append(p.superseded, string(m.Payload))
		p.mu.Unlock()
	})
	mw, err := coalesce.NewMiddleware(cfg, republish, append(opts, superseded)...)
	require.NoError(t, err)
	p.mw = mw
	p.handler = mw.Middleware(func(m *message.Message) ([]*message.Message, error) {
		p.mu.Lock()
		gate := p.gate[string(m.Payload)]
		p.mu.Unlock()
		if gate != nil {
			<-gate
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.fail[string(m.Payload)] > 0 {
			p.fail[string(m.Payload)]--
			return nil, errors.New("transport down")
		}
		p.next = append(p.next, string(m.Payload)+"@"+strconv.Itoa(int(time.Since(start)/time.Millisecond)))
		return nil, nil
	})
	go func() {
		defer close(p.done)
		for m := range p.ingress {
			for {
				_, err := p.handler(m)
				if err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond) // the ingress's retry backoff
			}
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *pipeline) stop() {
	select {
	case <-p.done:
	default:
		close(p.ingress)
		<-p.done
	}
}

func (p *pipeline) publish(typ, key, payload string) *message.Message {
	m := message.NewMessage(payload, []byte(payload))
	m.Metadata.Set("event_type", typ)
	m.Metadata.Set("event_key", key)
	p.ingress <- m
	return m
}

func (p *pipeline) took() []string {
	synctest.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.next...)
}

func TestMiddleware(t *testing.T) {
	type pub struct {
		at           time.Duration
		typ, key, pl string
	}
	typing := func(at time.Duration, key, pl string) pub { return pub{at, "typing", key, pl} }
	chat := func(at time.Duration, key, pl string) pub { return pub{at, "chat_message", key, pl} }
	tests := []struct {
		name string
		pubs []pub
		want []string
		// unordered: keys apart, the trailing edges of one instant come in
		// no set order.
		unordered bool
	}{
		{
			name: "10 typing events in 50ms: 2, the trailing one with the 10th payload",
			pubs: func() []pub {
				var ps []pub
				for i := range 10 {
					ps = append(ps, typing(time.Duration(i)*50*time.Millisecond/9, "r1", "t"+strconv.Itoa(i)))
				}
				return ps
			}(),
			want: []string{"t0@0", "t9@100"},
		},
		{
			name: "1 typing event: 1",
			pubs: []pub{typing(0, "r1", "t0")},
			want: []string{"t0@0"},
		},
		{
			name: "other event types pass untouched and in order",
			pubs: []pub{
				typing(0, "r1", "t0"), chat(0, "r1", "c0"), typing(1*time.Millisecond, "r1", "t1"),
				chat(1*time.Millisecond, "r1", "c1"), chat(2*time.Millisecond, "r1", "c2"),
				typing(3*time.Millisecond, "r1", "t2"), chat(3*time.Millisecond, "r1", "c3"),
			},
			want: []string{"t0@0", "c0@0", "c1@1", "c2@2", "c3@3", "t2@100"},
		},
		{
			name: "different keys never coalesce with each other",
			pubs: []pub{
				typing(0, "r1", "a0"), typing(0, "r2", "b0"), typing(5*time.Millisecond, "r1", "a1"),
				typing(5*time.Millisecond, "r2", "b1"), typing(6*time.Millisecond, "r2", "b2"),
			},
			want:      []string{"a0@0", "b0@0", "a1@100", "b2@100"},
			unordered: true,
		},
		{
			name: "a message without a key passes",
			pubs: []pub{typing(0, "", "x0"), typing(0, "", "x1")},
			want: []string{"x0@0", "x1@0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				p := newPipeline(t, coalesce.MiddlewareConfig{}, coalesce.WithRegisterer(reg))
				defer p.mw.Close()
				began := time.Now()
				for _, pb := range tt.pubs {
					time.Sleep(pb.at - time.Since(began))
					p.publish(pb.typ, pb.key, pb.pl)
				}
				time.Sleep(time.Second)
				if tt.unordered {
					assert.ElementsMatch(t, tt.want, p.took())
				} else {
					assert.Equal(t, tt.want, p.took())
				}
				assert.Zero(t, p.mw.Len())

				typing := 0
				for _, pb := range tt.pubs {
					if pb.typ == "typing" && pb.key != "" {
						typing++
					}
				}
				var typingOut int
				for _, s := range tt.want {
					if s[0] != 'c' && s[0] != 'x' {
						typingOut++
					}
				}
				saved := typing - typingOut
				assert.Equal(t, float64(saved), counter(t, reg, "events_coalesced_total", "typing"),
					"events_coalesced_total counts what was saved")
				p.mu.Lock()
				assert.Len(t, p.superseded, saved, "each message coalesced away is reported superseded")
				p.mu.Unlock()
			})
		})
	}
}

// counter returns the value of name{event_type=eventType} in reg.
func counter(t *testing.T, reg *prometheus.Registry, name, eventType string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "event_type" && l.GetValue() == eventType {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{event_type=%q}", name, eventType)
	return 0
}

// A trailing message that fails is retried like any other, and lets the
// key's next messages through only once.
func TestMiddlewareTrailingIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPipeline(t, coalesce.MiddlewareConfig{})
		defer p.mw.Close()
		p.fail["t1"] = 2
		p.publish("typing", "r1", "t0")
		p.publish("typing", "r1", "t1")
		time.Sleep(time.Second)
		assert.Equal(t, []string{"t0@0", "t1@120"}, p.took(), "two failures, two 10ms backoffs")
		p.publish("typing", "r1", "t2")
		assert.Equal(t, []string{"t0@0", "t1@120", "t2@1000"}, p.took(), "after a quiet window, a leading edge again")
	})
}

// A leading message that fails goes on again when it is redelivered, at
// once: it is not held for its window's end.
func TestMiddlewareLeadingIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPipeline(t, coalesce.MiddlewareConfig{})
		defer p.mw.Close()
		p.fail["t0"] = 2
		p.publish("typing", "r1", "t0")
		p.publish("typing", "r1", "t1")
		time.Sleep(time.Second)
		assert.Equal(t, []string{"t0@20", "t1@100"}, p.took())
	})
}

// A key's messages never overtake its trailing message while that one is on
// its way back through the ingress, however long that takes.
func TestMiddlewareKeepsOrderBehindATrailingMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPipeline(t, coalesce.MiddlewareConfig{})
		defer p.mw.Close()
		release := make(chan struct{})
		p.gate["slow"] = release
		p.publish("typing", "r1", "t0")
		p.publish("typing", "r1", "t1") // trailing at 100ms
		time.Sleep(90 * time.Millisecond)
		p.publish("chat_message", "r1", "slow") // the transport stalls on it
		time.Sleep(5 * time.Millisecond)
		p.publish("typing", "r1", "t2") // queued before t1 comes back at 100ms
		time.Sleep(155 * time.Millisecond)
		// The window after t1's ended empty at 200ms and forgot the key,
		// with t1 queued behind t2.
		close(release)
		time.Sleep(time.Second)
		assert.Equal(t, []string{"t0@0", "slow@250", "t1@250", "t2@350"}, p.took(),
			"t2 waits for the end of a window of its own, behind t1")
	})
}

// Close republishes what is pending, then lets everything through.
func TestMiddlewareCloseFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPipeline(t, coalesce.MiddlewareConfig{})
		for k := range 3 {
			key := "r" + strconv.Itoa(k)
			p.publish("typing", key, key+"-0")
			p.publish("typing", key, key+"-1")
			p.publish("typing", key, key+"-2")
		}
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		require.NoError(t, p.mw.Close())
		time.Sleep(time.Millisecond)
		got := p.took()
		assert.ElementsMatch(t, []string{"r0-0@0", "r1-0@0", "r2-0@0", "r0-2@10", "r1-2@10", "r2-2@10"}, got)
		p.publish("typing", "r0", "late-0")
		p.publish("typing", "r0", "late-1")
		assert.Equal(t, []string{"late-0@11", "late-1@11"}, p.took()[6:], "closed: uncoalesced")
		require.NoError(t, p.mw.Close(), "idempotent")
	})
}

func TestMiddlewareCloseReportsLostTrailingMessages(t *testing.T) {
	errFull := errors.New("ingress full")
	mw, err := coalesce.NewMiddleware(coalesce.MiddlewareConfig{
		Windows: map[string]time.Duration{"typing": 30 * time.Minute},
	}, func(*message.Message) error { return errFull })
	require.NoError(t, err)
	h := mw.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	for i := range 3 {
		m := message.NewMessage(strconv.Itoa(i), nil)
		m.Metadata.Set("event_type", "typing")
		m.Metadata.Set("event_key", "r1")
		_, err := h(m)
		require.NoError(t, err)
	}
	err = mw.Close()
	require.ErrorIs(t, err, errFull)
	assert.Contains(t, err.Error(), "1 trailing messages could not be republished")
}

// Past MaxKeys messages pass uncoalesced, and are counted.
func TestMiddlewareOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		p := newPipeline(t, coalesce.MiddlewareConfig{MaxKeys: 1}, coalesce.WithRegisterer(reg))
		defer p.mw.Close()
		p.publish("typing", "r1", "a0")
		p.publish("typing", "r1", "a1")
		p.publish("typing", "r2", "b0")
		p.publish("typing", "r2", "b1")
		time.Sleep(time.Second)
		assert.Equal(t, []string{"a0@0", "b0@0", "b1@0", "a1@100"}, p.took())
		assert.EqualValues(t, 2, counter(t, reg, "switchyard_coalesce_overflow_total", "typing"))
		families, err := reg.Gather()
		require.NoError(t, err)
		var names []string
		for _, f := range families {
			names = append(names, f.GetName())
		}
		assert.Equal(t, []string{"events_coalesced_total", "switchyard_coalesce_keys", "switchyard_coalesce_overflow_total"}, names)
	})
}

func TestMiddlewareSetWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPipeline(t, coalesce.MiddlewareConfig{})
		defer p.mw.Close()
		require.NoError(t, p.mw.SetWindow("typing", 300*time.Millisecond))
		p.publish("typing", "r1", "t0")
		p.publish("typing", "r1", "t1")
		time.Sleep(time.Second)
		assert.Equal(t, []string{"t0@0", "t1@300"}, p.took())

		assert.ErrorContains(t, p.mw.SetWindow("chat_message", time.Second), `"chat_message" is not coalesced`)
		assert.ErrorContains(t, p.mw.SetWindow("typing", 0), "must be positive")
	})
}

func TestNewMiddlewareErrors(t *testing.T) {
	republish := func(*message.Message) error { return nil }
	tests := []struct {
		name      string
		cfg       coalesce.MiddlewareConfig
		republish func(*message.Message) error
		want      []string
	}{
		{"no windows", coalesce.MiddlewareConfig{}, republish, []string{"windows: must name at least one"}},
		{"bad windows", coalesce.MiddlewareConfig{
			Windows: map[string]time.Duration{"typing": 0, "presence": -time.Second},
		}, republish, []string{"windows.typing: must be positive", "windows.presence: must be positive"}},
		{"no republish", coalesce.MiddlewareConfig{Windows: map[string]time.Duration{"typing": window}}, nil, []string{"republish must not be nil"}},
		{"bad max_keys", coalesce.MiddlewareConfig{Windows: map[string]time.Duration{"typing": window}, MaxKeys: -1}, republish,
			[]string{"max_keys"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := coalesce.NewMiddleware(tt.cfg, tt.republish)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestNewMiddlewareRegistersOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := coalesce.MiddlewareConfig{Windows: map[string]time.Duration{"typing": window}}
	republish := func(*message.Message) error { return nil }
	mw, err := coalesce.NewMiddleware(cfg, republish, coalesce.WithRegisterer(reg))
	require.NoError(t, err)
	defer mw.Close()
	_, err = coalesce.NewMiddleware(cfg, republish, coalesce.WithRegisterer(reg))
	assert.ErrorContains(t, err, "register metrics")
}

func TestIsRepublished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var republished []*message.Message
		mw, err := coalesce.NewMiddleware(coalesce.MiddlewareConfig{Windows: map[string]time.Duration{"typing": window}},
			func(m *message.Message) error { republished = append(republished, m); return nil })
		require.NoError(t, err)
		defer mw.Close()
		h := mw.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		var ms []*message.Message
		for i := range 2 {
			m := message.NewMessage(strconv.Itoa(i), []byte{byte(i)})
			m.Metadata.Set("event_type", "typing")
			m.Metadata.Set("event_key", "r1")
			ms = append(ms, m)
			_, _ = h(m)
		}
		time.Sleep(window)
		synctest.Wait()
		require.Len(t, republished, 1)
		assert.True(t, coalesce.IsRepublished(republished[0]))
		assert.False(t, coalesce.IsRepublished(ms[1]))
		assert.Equal(t, ms[1].UUID, republished[0].UUID, "the same message, copied")
		assert.Equal(t, ms[1].Metadata, republished[0].Metadata)
		assert.Equal(t, ms[1].Payload, republished[0].Payload)
	})
}
