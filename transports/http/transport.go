package httptransport

import (
	"fmt"

	"github.com/switchyard-go/switchyard/transports"
)

// Name is the type name the HTTP transport registers under.
const Name = "http"

func init() { transports.Register(Name, Factory) }

// Factory builds the HTTP transport's Publisher from its configuration
// section. It has no subscriber: a Receiver is mounted in a server, which
// configuration does not make; see NewReceiver and docs/http.md for using
// one as an inbound transport of the bus.
func Factory(s transports.Settings) (transports.Transport, error) {
	var cfg Config
	if err := s.Decode(&cfg); err != nil {
		return transports.Transport{}, fmt.Errorf("httptransport: config: %w", err)
	}
	pub, err := NewPublisher(cfg, s.Logger)
	if err != nil {
		return transports.Transport{}, err
	}
	return transports.Transport{Publisher: pub}, nil
}

var _ transports.Factory = Factory
