package memory_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports"
	"github.com/switchyard-go/switchyard/transports/memory"
)

// memoryMetrics gathers reg into "family" or "family{topic}" → value,
// checking that every series is labelled with transport.
func memoryMetrics(t *testing.T, reg *prometheus.Registry, transport string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			assert.Equal(t, transport, labels["transport"], name)
			if topic, ok := labels["topic"]; ok {
				name += "{" + topic + "}"
			}
			switch {
			case m.Gauge != nil:
				out[name] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[name] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// The Factory registers the transport's collector on the bus's registerer:
// its queue depth by topic, its capacity and its delivery counters, read
// from the broker when scraped.
func TestFactoryRegistersMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		tr, err := memory.Factory(transports.Settings{
			Name: "inbox",
			Decode: func(target any) error {
				*target.(*memory.Config) = memory.Config{MaxRetries: 1, RetryBackoff: time.Millisecond, QueueSize: 100}
				return nil
			},
			Logger:     watermill.NopLogger{},
			Registerer: reg,
		})
		require.NoError(t, err)
		b := tr.Publisher.(*memory.Broker)
		assert.True(t, tr.InProcess, "the memory transport is in process")
		assert.Equal(t, map[string]float64{
			"switchyard_memory_queue_capacity":      100,
			"switchyard_memory_delivered_total":     0,
			"switchyard_memory_nacked_total":        0,
			"switchyard_memory_dead_lettered_total": 0,
		}, memoryMetrics(t, reg, "inbox"), "no topic yet; the counters from the start, at zero")

		msgs, err := b.Subscribe(t.Context(), "events")
		require.NoError(t, err)
		require.NoError(t, b.Publish("events", keyed("a", "k1", "1"), keyed("b", "k2", "2"), keyed("c", "k3", "3")))
		got := map[string]*message.Message{}
		for range 3 {
			m := receive(t, msgs)
			got[m.UUID] = m
		}
		// A second consumer group that has read nothing: the topic's depth
		// is its fullest group's.
		require.NoError(t, b.Subscriber("idle").SubscribeInitialize("events"))
		require.NoError(t, b.Publish("events", keyed("d", "k4", "4")))
		d := receive(t, msgs)
		synctest.Wait()
		assert.Equal(t, 4.0, memoryMetrics(t, reg, "inbox")["switchyard_memory_queue_depth{events}"], "four delivered, none acked")

		got["a"].Ack()
		got["c"].Ack()
		d.Ack()
		got["b"].Nack() // redelivered once (max_retries 1), then dead-lettered
		again := receive(t, msgs)
		require.Equal(t, "b", again.UUID)
		again.Nack()
		synctest.Wait()
		assert.Equal(t, map[string]float64{
			"switchyard_memory_queue_depth{events}": 1, // "idle" holds d
			// The dead letter, kept in dead_letter for whoever reads it.
			"switchyard_memory_queue_depth{dead_letter}": 1,
			"switchyard_memory_queue_capacity":           100,
			"switchyard_memory_delivered_total":          5,
			"switchyard_memory_nacked_total":             2,
			"switchyard_memory_dead_lettered_total":      1,
		}, memoryMetrics(t, reg, "inbox"))

		// Closed, it holds nothing: what it held was discarded.
		require.NoError(t, b.Close())
		closed := memoryMetrics(t, reg, "inbox")
		assert.Equal(t, 0.0, closed["switchyard_memory_queue_depth{events}"])
		assert.Equal(t, 0.0, closed["switchyard_memory_queue_depth{dead_letter}"])

		// A second memory transport with the same name on the same
		// registerer would mix two brokers' counts: refused.
		_, err = memory.Factory(transports.Settings{
			Name:       "inbox",
			Decode:     func(any) error { return nil },
			Logger:     watermill.NopLogger{},
			Registerer: reg,
		})
		require.ErrorContains(t, err, "register metrics")
	})
}
