package bus

import (
	"cmp"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/switchyard-go/switchyard/middleware"
)

// setupRouting builds the route (split) and fallback stages from
// routing.*; Reload reconfigures them in place. Their default metadata
// keys are the bus's.
func (b *Bus) setupRouting() (err error) {
	r := b.cfg.Routing
	if b.split, err = middleware.NewSplit(splitConfig(r)); err != nil {
		return newConfigError("routing", err.Error())
	}
	b.fallback, err = middleware.NewFallback(fallbackConfig(r),
		middleware.WithRegisterer(b.reg),
		middleware.WithLogger(b.logger.With(watermill.LogFields{"component": "fallback"})))
	if err != nil {
		return newConfigError("routing.fallback", err.Error())
	}
	return nil
}

func splitConfig(r RoutingConfig) middleware.SplitConfig {
	return middleware.SplitConfig{
		Baseline:   r.Baseline,
		Candidate:  r.Candidate,
		Enabled:    r.Enabled,
		Percentage: r.Percentage,
		EventTypes: r.EventTypes,
		Salt:       r.Salt,
	}
}

func fallbackConfig(r RoutingConfig) middleware.FallbackConfig {
	to := cmp.Or(r.Fallback.To, r.Baseline)
	return middleware.FallbackConfig{
		Enabled:        r.Fallback.Enabled,
		To:             to,
		PublishTimeout: r.Fallback.PublishTimeout,
		Cooldown:       r.Fallback.Cooldown,

		FailureThreshold: uint32(r.Fallback.FailureThreshold),
		ProbeInterval:    r.Fallback.ProbeInterval,
		CooldownKeys:     r.Fallback.MaxKeys,
	}
}
