package middleware

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/internal/fnv"
	"github.com/switchyard-go/switchyard/internal/metakey"
)

// Buckets is the number of buckets Split hashes keys into: a percentage
// moves keys in steps of 0.01%.
const Buckets = 10000

// SplitConfig says which events Split sends to the candidate transport.
// Every field can change at run time with Split.Update.
type SplitConfig struct {
	// Baseline is the transport events take by default.
	Baseline string
	// Candidate is the transport the rollout moves keys to.
	Candidate string
	// Enabled is the master switch: false sends every event to Baseline,
	// whatever Percentage says.
	Enabled bool
	// Percentage, 0 to 100, is the share of keys sent to Candidate, in
	// steps of 0.01. 0 sends none and 100 all.
	Percentage float64
	// EventTypes limits the rollout to these event types; others take
	// Baseline. Empty means every type.
	EventTypes []string
	// Salt changes which keys a percentage picks. Changing it moves keys
	// both ways: keep it fixed for the length of a rollout.
	Salt string
}

// Validate reports what is wrong with c.
func (c SplitConfig) Validate() error {
	var errs []error
	if c.Baseline == "" {
		errs = append(errs, errors.New("middleware: split: baseline must name a transport"))
	}
	if c.Enabled && c.Candidate == "" {
		errs = append(errs, errors.New("middleware: split: candidate must name a transport when enabled"))
	}
	if !(c.Percentage >= 0 && c.Percentage <= 100) { // NaN fails too
		errs = append(errs, fmt.Errorf("middleware: split: percentage must be between 0 and 100, got %g", c.Percentage))
	}
	return errors.Join(errs...)
}

// Split is the routing stage of a percentage rollout. Each event's key
// falls in one of Buckets buckets, FNV-1a (64-bit) of Salt followed by the
// key, modulo Buckets; keys whose bucket is below Percentage×100 go to the
// candidate. So one key always takes one path while the percentage is
// unchanged and keeps its order, and raising the percentage only moves keys
// from the baseline to the candidate, never back.
//
// Split writes the chosen transport's name to the message's transport
// metadata, unless an earlier stage already set it; a later stage (dispatch)
// publishes on it. It is safe for concurrent use, and Update swaps its
// configuration atomically.
type Split struct {
	state        atomic.Pointer[splitState]
	key          func(*message.Message) string
	eventType    func(*message.Message) string
	transportKey string
}

type splitState struct {
	cfg       SplitConfig
	threshold uint64              // buckets below it go to the candidate
	types     map[string]struct{} // nil: every type
	seed      uint64              // FNV-1a state after the salt
}

// NewSplit returns a Split with cfg. It reads WithKey, WithEventType and
// WithTransportKey.
func NewSplit(cfg SplitConfig, opts ...Option) (*Split, error) {
	o := buildOptions(opts, metadataReader(metakey.EventKey))
	s := &Split{key: o.key, eventType: o.eventType, transportKey: o.transportKey}
	if err := s.Update(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Update replaces the configuration; events routed after it returns use the
// new one. An invalid cfg is refused and the old one stays.
func (s *Split) Update(cfg SplitConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.EventTypes = slices.Clone(cfg.EventTypes)
	st := &splitState{
		cfg:       cfg,
		threshold: uint64(cfg.Percentage*100 + 0.5),
		seed:      fnv.Add64(fnv.Offset64, cfg.Salt),
	}
	if len(cfg.EventTypes) > 0 {
		st.types = make(map[string]struct{}, len(cfg.EventTypes))
		for _, t := range cfg.EventTypes {
			st.types[t] = struct{}{}
		}
	}
	s.state.Store(st)
	return nil
}

// Config returns the configuration in effect.
func (s *Split) Config() SplitConfig {
	cfg := s.state.Load().cfg
	cfg.EventTypes = slices.Clone(cfg.EventTypes)
	return cfg
}

// Choose returns the transport m goes to.
func (s *Split) Choose(m *message.Message) string {
	st := s.state.Load()
	if !st.enabled() {
		return st.cfg.Baseline
	}
	if st.types != nil {
		if _, ok := st.types[s.eventType(m)]; !ok {
			return st.cfg.Baseline
		}
	}
	if fnv.Add64(st.seed, s.key(m))%Buckets < st.threshold {
		return st.cfg.Candidate
	}
	return st.cfg.Baseline
}

func (st *splitState) enabled() bool { return st.cfg.Enabled && st.threshold > 0 }

// Middleware is the stage: it marks each message with its transport and
// calls h.
func (s *Split) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(m *message.Message) ([]*message.Message, error) {
		if m.Metadata.Get(s.transportKey) == "" {
			m.Metadata.Set(s.transportKey, s.Choose(m))
		}
		return h(m)
	}
}

// Bucket returns the bucket, 0 to Buckets-1, of key under salt: the
// function Split routes by, for tools that predict where a key goes.
func Bucket(salt, key string) int {
	return int(fnv.Add64(fnv.Add64(fnv.Offset64, salt), key) % Buckets)
}
