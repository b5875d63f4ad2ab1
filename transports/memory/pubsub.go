package memory

import (
	"fmt"

	"github.com/switchyard-go/switchyard/transports"
)

// Name is the type name the memory transport registers under.
const Name = "memory"

func init() { transports.Register(Name, Factory) }

// Factory builds a memory transport from its configuration section; the one
// Broker is both its publisher and its subscriber.
func Factory(s transports.Settings) (transports.Transport, error) {
	var cfg Config
	if err := s.Decode(&cfg); err != nil {
		return transports.Transport{}, err
	}
	b, err := NewBroker(cfg, s.Logger)
	if err != nil {
		return transports.Transport{}, err
	}
	if s.Registerer != nil {
		if err := s.Registerer.Register(NewCollector(b, s.Name)); err != nil {
			_ = b.Close()
			return transports.Transport{}, fmt.Errorf("memory: register metrics: %w", err)
		}
	}
	return transports.Transport{Publisher: b, Subscriber: b, InProcess: true}, nil
}

var _ transports.Drainer = (*Broker)(nil) // internal/queue checks the rest
