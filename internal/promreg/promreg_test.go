package promreg_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/promreg"
)

func TestRegisterSharesTheFirstCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "shared_total", Help: "h"}
	first := promreg.Register(reg, prometheus.NewCounterVec(opts, []string{"stream"}))
	second := promreg.Register(reg, prometheus.NewCounterVec(opts, []string{"stream"}))
	require.Same(t, first, second)
	second.WithLabelValues("s").Inc()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, mfs, 1)
	require.Equal(t, 1.0, mfs[0].GetMetric()[0].GetCounter().GetValue())
}
