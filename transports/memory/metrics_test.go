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

// memoryMetrics gathers reg into family name → value of its one series,
// checking that the series is labelled with transport.
func memoryMetrics(t *testing.T, reg *prometheus.Registry, transport string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		require.Len(t, mf.GetMetric(), 1, mf.GetName())
		m := mf.GetMetric()[0]
		require.Len(t, m.GetLabel(), 1, mf.GetName())
		assert.Equal(t, "transport", m.GetLabel()[0].GetName(), mf.GetName())
		assert.Equal(t, transport, m.GetLabel()[0].GetValue(), mf.GetName())
		switch {
		case m.Gauge != nil:
			out[mf.GetName()] = m.GetGauge().GetValue()
		case m.Counter != nil:
			out[mf.GetName()] = m.GetCounter().GetValue()
		}
	}
	return out
}

// The Factory registers the transport's collector on the bus's registerer:
// its queue depth and delivery counters, read from the broker when
// scraped.
func TestFactoryRegistersMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		tr, err := memory.Factory(transports.Settings{
			Name: "inbox",
			Decode: func(target any) error {
				*target.(*memory.Config) = memory.Config{MaxRetries: 1, RetryBackoff: time.Millisecond}
				return nil
			},
			Logger:     watermill.NopLogger{},
			Registerer: reg,
		})
		require.NoError(t, err)
		b := tr.Publisher.(*memory.Broker)
		t.Cleanup(func() { require.NoError(t, b.Close()) })
		assert.True(t, tr.InProcess, "the memory transport is in process")
		assert.Equal(t, map[string]float64{
			"switchyard_memory_queue_depth":         0,
			"switchyard_memory_delivered_total":     0,
			"switchyard_memory_nacked_total":        0,
			"switchyard_memory_dead_lettered_total": 0,
		}, memoryMetrics(t, reg, "inbox"), "every series from the start, at zero")

		msgs, err := b.Subscribe(t.Context(), "events")
		require.NoError(t, err)
		require.NoError(t, b.Publish("events", keyed("a", "k1", "1"), keyed("b", "k2", "2"), keyed("c", "k3", "3")))
		got := map[string]*message.Message{}
		for range 3 {
			m := receive(t, msgs)
			got[m.UUID] = m
		}
		synctest.Wait()
		assert.Equal(t, 3.0, memoryMetrics(t, reg, "inbox")["switchyard_memory_queue_depth"], "three delivered, none acked")

		got["a"].Ack()
		got["c"].Ack()
		got["b"].Nack() // redelivered once (max_retries 1), then dead-lettered
		again := receive(t, msgs)
		require.Equal(t, "b", again.UUID)
		again.Nack()
		synctest.Wait()
		assert.Equal(t, map[string]float64{
			// Its dead letter, kept in dead_letter for whoever reads it.
			"switchyard_memory_queue_depth":         1,
			"switchyard_memory_delivered_total":     4,
			"switchyard_memory_nacked_total":        2,
			"switchyard_memory_dead_lettered_total": 1,
		}, memoryMetrics(t, reg, "inbox"))

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
