package bus

import (
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/middleware"
)

// routing is the route and fallback stages of the publish pipeline, built
// from routing.* and reconfigured in place by Reload.
type routing struct {
	split    *middleware.Split
	fallback *middleware.Fallback
}

func (b *Bus) setupRouting() error {
	r := b.cfg.Routing
	// The stages' default metadata keys are the bus's.
	split, err := middleware.NewSplit(splitConfig(r))
	if err != nil {
		return newConfigError("routing", err.Error())
	}
	fallback, err := middleware.NewFallback(fallbackConfig(r),
		middleware.WithRegisterer(b.reg),
		middleware.WithLogger(b.logger.With(watermill.LogFields{"component": "fallback"})))
	if err != nil {
		return newConfigError("routing.fallback", err.Error())
	}
	b.routing = &routing{split: split, fallback: fallback}
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
	to := r.Fallback.To
	if to == "" {
		to = r.Baseline
	}
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

// routeStages are the route (split) and fallback stages, innermost last.
func (b *Bus) routeStages() []message.HandlerMiddleware {
	return []message.HandlerMiddleware{b.routing.split.Middleware, b.routing.fallback.Middleware}
}
