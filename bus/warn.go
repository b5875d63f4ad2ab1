package bus

import (
	"cmp"
	"maps"
	"slices"

	"github.com/ThreeDotsLabs/watermill"
	kmaps "github.com/knadh/koanf/maps"
)

// warn logs what an operator should act on. Watermill's logger has no
// warning level: with WithLogger (or the default slog logger) it is a WARN
// record, through a bare adapter an Info one. Fields are scrubbed as every
// log line is.
func (b *Bus) warn(msg string, fields watermill.LogFields) {
	fields = scrubFields(fields, b.secrets.Load(), true)
	if b.slog == nil {
		b.logger.Info(msg, fields)
		return
	}
	args := make([]any, 0, 2*len(fields))
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		args = append(args, k, fields[k])
	}
	b.slog.Warn(msg, args...)
}

// redisStreamsType is the registered type of the Redis Streams transport;
// the bus names it only to warn about a stream nobody reads.
const redisStreamsType = "redisstream"

// logRoutes logs, at start, the paths events take, and warns about a Redis
// Streams path whose stream no consumer group of this configuration reads:
// its entries pile up to maxlen unless another process reads them.
func (b *Bus) logRoutes() {
	r := b.cfg.Routing
	fallback := ""
	if r.Fallback.Enabled {
		fallback = cmp.Or(r.Fallback.To, r.Baseline)
	}
	b.logger.Info("Bus routes", watermill.LogFields{
		"baseline":        r.Baseline,
		"candidate":       r.Candidate,
		"routing_enabled": r.Enabled,
		"percentage":      r.Percentage,
		"fallback_to":     fallback,
		"consume_from":    b.cfg.Consume.From,
	})
	for _, section := range b.cfg.Transports {
		if g, _ := section["consumer_group"].(string); g != "" && section["type"] == redisStreamsType {
			return
		}
	}
	var warned []string
	for _, name := range []string{r.Baseline, r.Candidate, fallback} {
		if name != "" && !slices.Contains(warned, name) && b.cfg.Transports[name]["type"] == redisStreamsType {
			warned = append(warned, name)
			b.warn("Redis Streams path with no consumer group in this configuration: its events are written to the stream and nobody here reads them; set consumer_group where the hub consumes", watermill.LogFields{"transport": name})
		}
	}
}

// warnOverrides warns about each key the watched file sets that a later
// source (the environment) sets too: a change to it in the file is ignored.
func (b *Bus) warnOverrides(path string, sources []Source) {
	fileKeys := map[string]bool{}
	found := false
	for _, s := range sources {
		if s.read == nil {
			continue
		}
		values, where, err := s.read()
		if err != nil {
			continue // LoadConfig reports it
		}
		flat, _ := kmaps.Flatten(values, nil, ".")
		if s.name == fileSourceName(path) {
			found = true
			for k := range flat {
				fileKeys[k] = true
			}
			continue
		}
		if !found {
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(flat)) {
			if fileKeys[k] {
				b.warn("A key of the watched configuration file is overridden: its changes in the file are ignored", watermill.LogFields{
					"key": k, "file": path, "overridden_by": cmp.Or(where[k], s.name),
				})
			}
		}
	}
}
