package httptransport_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// Close stops taking requests (503 with Retry-After) and delivers what it
// already answered 202 for: a subscriber still busy with the first message
// when Close starts gets every one of them.
func TestReceiverCloseDeliversQueuedMessages(t *testing.T) {
	const n = 5
	r, err := httptransport.NewReceiver(httptransport.ReceiverConfig{
		QueueSize: n, HandlerTimeout: 10 * time.Second, DrainTimeout: 30 * time.Second,
	}, nil)
	require.NoError(t, err)
	srv := mount(t, r)
	url := srv.URL + "/events/chat"
	msgs := subscribe(t, r, "chat")
	for i := range n {
		status, _ := post(t, url, http.Header{"Switchyard-Id": {strconv.Itoa(i)}}, "x")
		require.Equal(t, http.StatusAccepted, status)
	}

	first := <-msgs // the subscriber is busy with it while Close starts
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	require.Eventually(t, func() bool {
		status, retryAfter := post(t, url, http.Header{"Switchyard-Id": {"late"}}, "x")
		return status == http.StatusServiceUnavailable && retryAfter == "1"
	}, 5*time.Second, 5*time.Millisecond, "a closing Receiver answers 503 with Retry-After")

	first.Ack()
	got := []string{first.UUID}
	for m := range msgs {
		got = append(got, m.UUID)
		m.Ack()
	}
	require.NoError(t, <-closed)
	require.Equal(t, []string{"0", "1", "2", "3", "4"}, got, "every message answered 202, in order")
}

// A subscriber that never acks cannot hold Close past drain_timeout: Close
// then returns an error naming how many accepted messages were not
// delivered, and switchyard_http_undelivered_total counts them.
func TestReceiverCloseIsBoundedAndCountsWhatItCouldNotDeliver(t *testing.T) {
	const n = 4
	reg := prometheus.NewRegistry()
	const drainTimeout = 300 * time.Millisecond
	r, err := httptransport.NewReceiver(httptransport.ReceiverConfig{
		QueueSize: n, HandlerTimeout: 10 * time.Second, DrainTimeout: drainTimeout,
	}, nil, httptransport.WithRegisterer(reg))
	require.NoError(t, err)
	srv := mount(t, r)
	url := srv.URL + "/events/chat"
	msgs := subscribe(t, r, "chat")
	for i := range n {
		status, _ := post(t, url, http.Header{"Switchyard-Id": {strconv.Itoa(i)}}, "x")
		require.Equal(t, http.StatusAccepted, status)
	}
	stuck := <-msgs // and never acked: its handler hangs

	start := time.Now()
	err = r.Close()
	elapsed := time.Since(start)
	require.ErrorIs(t, err, httptransport.ErrCloseTimeout)
	require.ErrorContains(t, err, "4 queued messages")
	require.GreaterOrEqual(t, elapsed, drainTimeout, "it tried to deliver until drain_timeout")
	require.Less(t, elapsed, drainTimeout+2*time.Second, "and no longer")
	<-stuck.Context().Done()
	require.Equal(t, float64(n), metricValue(t, reg, "switchyard_http_undelivered_total", map[string]string{"topic": "chat"}))
	require.ErrorIs(t, r.Close(), httptransport.ErrCloseTimeout, "Close is idempotent and keeps its answer")
}

// A topic no subscription reads is not waited for: its queued messages are
// reported at once.
func TestReceiverCloseDoesNotWaitForTopicsWithoutSubscription(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		r, err := httptransport.NewReceiver(httptransport.ReceiverConfig{QueueSize: 10}, nil, httptransport.WithRegisterer(reg))
		require.NoError(t, err)
		require.NoError(t, r.SubscribeInitialize("chat"))
		require.Equal(t, http.StatusAccepted, queue(t, r, "chat", "1"))
		start := time.Now()
		err = r.Close()
		require.ErrorIs(t, err, httptransport.ErrCloseTimeout)
		require.ErrorContains(t, err, "1 queued message")
		require.Zero(t, time.Since(start))
		require.Equal(t, 1.0, metricValue(t, reg, "switchyard_http_undelivered_total", map[string]string{"topic": "chat"}))
	})
}

// A message that failed every delivery moves to the dead-letter topic of
// the Receiver, where a subscription can read it, and the topic it came
// from moves on: a poison message never blocks the messages behind it, and
// is counted in switchyard_http_dead_lettered_total.
func TestReceiverQueueDeadLetterTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		r, err := httptransport.NewReceiver(httptransport.ReceiverConfig{
			QueueSize: 10, MaxRetries: 2, RetryBackoff: 10 * time.Millisecond,
		}, nil, httptransport.WithRegisterer(reg))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, r.Close()) })
		require.NoError(t, r.SubscribeInitialize("chat"))
		require.Equal(t, http.StatusAccepted, queue(t, r, "chat", "poison"))
		require.Equal(t, http.StatusAccepted, queue(t, r, "chat", "next"))
		msgs := subscribe(t, r, "chat")

		for range 3 { // the delivery and max_retries redeliveries
			m := <-msgs
			require.Equal(t, "poison", m.UUID)
			m.Nack()
		}
		m := <-msgs
		require.Equal(t, "next", m.UUID, "the topic moved on")
		m.Ack()

		dead := subscribe(t, r, "dead_letter")
		d := <-dead
		require.Equal(t, "poison", d.UUID)
		require.Equal(t, "payload of poison", string(d.Payload))
		require.Equal(t, "chat", d.Metadata.Get(httptransport.DeadLetterTopicKey))
		require.Equal(t, "3", d.Metadata.Get(httptransport.DeadLetterAttemptsKey))
		require.NotEmpty(t, d.Metadata.Get(httptransport.DeadLetterReasonKey))
		d.Ack()
		require.Equal(t, 1.0, metricValue(t, reg, "switchyard_http_dead_lettered_total", map[string]string{"topic": "chat"}))
	})
}

// A message of the dead-letter topic that fails every delivery cannot go
// anywhere else: it stays, delivered again every max_retry_backoff, rather
// than be dropped.
func TestReceiverQueueDeadLetterTopicKeepsItsOwnFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := httptransport.NewReceiver(httptransport.ReceiverConfig{
			QueueSize: 10, MaxRetries: 1, RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 10 * time.Millisecond,
			DeadLetterTopic: "dead",
		}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, r.Close()) })
		require.NoError(t, r.SubscribeInitialize("dead"))
		require.Equal(t, http.StatusAccepted, queue(t, r, "dead", "poison"))
		msgs := subscribe(t, r, "dead")
		for range 5 {
			m := <-msgs
			require.Equal(t, "poison", m.UUID)
			m.Nack()
		}
		(<-msgs).Ack()
		synctest.Wait() // the pump takes the acked message off before Close
	})
}

// The dead-letter topic's queue is bounded like any other: when it is
// full, the failed message stays at the head of its topic until there is
// room, and is not lost.
func TestReceiverQueueDeadLetterTopicFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := httptransport.NewReceiver(httptransport.ReceiverConfig{
			QueueSize: 1, MaxRetries: -1, RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 10 * time.Millisecond,
		}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, r.Close()) })
		require.NoError(t, r.SubscribeInitialize("chat"))
		msgs := subscribe(t, r, "chat")

		require.Equal(t, http.StatusAccepted, queue(t, r, "chat", "a"))
		(<-msgs).Nack() // a → dead_letter, which is now full
		synctest.Wait()
		require.Equal(t, http.StatusAccepted, queue(t, r, "chat", "b"))
		m := <-msgs
		require.Equal(t, "b", m.UUID)
		m.Nack()
		m = <-msgs
		require.Equal(t, "b", m.UUID, "no room in dead_letter: b stays and is tried again")
		m.Nack()
		// The pump finds dead_letter still full and waits to try b again,
		// before a leaves it below.
		synctest.Wait()

		dead := subscribe(t, r, "dead_letter")
		d := <-dead
		require.Equal(t, "a", d.UUID)
		d.Ack()
		m = <-msgs
		require.Equal(t, "b", m.UUID)
		m.Nack() // dead_letter has room now
		d = <-dead
		require.Equal(t, "b", d.UUID)
		d.Ack()
		synctest.Wait() // the pump takes the acked message off before Close
	})
}

// metricValue is the value of the series of family name with labels, 0
// when there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}

// Built from configuration, a queue-mode receiver dead-letters into the
// topic dead_letter_topic names, so a poison message does not block its
// topic; its Server's Close returns the Receiver's count of what it could
// not deliver within drain_timeout; both are counted on the registerer the
// Settings give.
func TestFactoryReceiverDeadLetterTopicAndDrainTimeout(t *testing.T) {
	reg := prometheus.NewRegistry()
	tr, err := buildOn(t, reg, map[string]any{"receiver": map[string]any{
		"listen": "127.0.0.1:0", "queue_size": 10, "handler_timeout": "10s",
		"max_retries": 1, "retry_backoff": "1ms", "dead_letter_topic": "poison", "drain_timeout": "100ms",
	}})
	require.NoError(t, err)
	srv, ok := tr.Subscriber.(*httptransport.Server)
	require.True(t, ok, "got %T", tr.Subscriber)
	url := "http://" + srv.Addr().String() + "/api/v1/events/chat"
	msgs := subscribe(t, srv, "chat")
	for _, id := range []string{"bad", "good"} {
		status, _ := post(t, url, http.Header{"Switchyard-Id": {id}}, "x")
		require.Equal(t, http.StatusAccepted, status)
	}
	for range 2 {
		m := <-msgs
		require.Equal(t, "bad", m.UUID)
		m.Nack()
	}
	m := <-msgs
	require.Equal(t, "good", m.UUID, "the topic moved on")
	m.Ack()
	d := <-subscribe(t, srv, "poison")
	require.Equal(t, "bad", d.UUID)
	require.Equal(t, "chat", d.Metadata.Get(httptransport.DeadLetterTopicKey))
	d.Ack()
	require.Equal(t, 1.0, metricValue(t, reg, "switchyard_http_dead_lettered_total", map[string]string{"topic": "chat"}))

	status, _ := post(t, url, http.Header{"Switchyard-Id": {"unread"}}, "x")
	require.Equal(t, http.StatusAccepted, status)
	err = srv.Close()
	require.ErrorIs(t, err, httptransport.ErrCloseTimeout)
	require.ErrorContains(t, err, "1 queued messages")
	require.Equal(t, 1.0, metricValue(t, reg, "switchyard_http_undelivered_total", map[string]string{"topic": "chat"}))
}

// A raw request without Switchyard-Id gets a new UUID at each attempt, so
// its retries cannot be deduplicated: with require_id it is refused with
// 400 (the sender must fix it, not retry), and a request with an id, raw
// or CloudEvents, is taken as before. Without require_id it is taken.
func TestReceiverRequireID(t *testing.T) {
	withID := map[string]http.Header{
		"raw":    {"Switchyard-Id": {"m-1"}},
		"binary": {"Ce-Specversion": {"1.0"}, "Ce-Id": {"m-1"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}},
	}
	for _, requireID := range []bool{false, true} {
		r := newReceiver(t, httptransport.ReceiverConfig{RequireID: requireID, HandlerTimeout: 10 * time.Second})
		srv := mount(t, r)
		url := srv.URL + "/events/chat"
		msgs := subscribe(t, r, "chat")

		status := postInBackground(t, url, nil, "x")
		if requireID {
			require.Equal(t, http.StatusBadRequest, <-status, "require_id: a raw request without an id")
		} else {
			m := <-msgs
			require.NotEmpty(t, m.UUID)
			m.Ack()
			require.Equal(t, http.StatusNoContent, <-status)
		}
		for format, header := range withID {
			status := postInBackground(t, url, header, "{}")
			m := <-msgs
			require.Equal(t, "m-1", m.UUID, "%s, require_id %t", format, requireID)
			m.Ack()
			require.Equal(t, http.StatusNoContent, <-status)
		}
	}
}

// Drain stops taking requests and returns once the queued messages were
// delivered, leaving the subscriptions open; with a handler that never
// acks, it returns when its context ends, saying how many are left.
func TestReceiverDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := httptransport.NewReceiver(httptransport.ReceiverConfig{QueueSize: 10, HandlerTimeout: time.Minute}, nil)
		require.NoError(t, err)
		require.NoError(t, r.SubscribeInitialize("chat"))
		for _, id := range []string{"1", "2", "3"} {
			require.Equal(t, http.StatusAccepted, queue(t, r, "chat", id))
		}
		msgs := subscribe(t, r, "chat")
		drained := make(chan error, 1)
		go func() { drained <- r.Drain(t.Context()) }()
		synctest.Wait()
		require.Equal(t, http.StatusServiceUnavailable, queue(t, r, "chat", "late"), "draining: no more requests")
		for _, id := range []string{"1", "2", "3"} {
			m := <-msgs
			require.Equal(t, id, m.UUID)
			m.Ack()
		}
		require.NoError(t, <-drained)

		stuck, err := httptransport.NewReceiver(httptransport.ReceiverConfig{QueueSize: 10, HandlerTimeout: time.Minute}, nil)
		require.NoError(t, err)
		require.NoError(t, stuck.SubscribeInitialize("chat"))
		for _, id := range []string{"1", "2"} {
			require.Equal(t, http.StatusAccepted, queue(t, stuck, "chat", id))
		}
		stuckMsgs := subscribe(t, stuck, "chat")
		<-stuckMsgs // never acked
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err = stuck.Drain(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorContains(t, err, "2 queued messages")

		require.NoError(t, r.Close())
		require.ErrorIs(t, stuck.Close(), httptransport.ErrCloseTimeout)
	})
}
