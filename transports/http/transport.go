package httptransport

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/switchyard-go/switchyard/transports"
)

// Name is the type name the HTTP transport registers under.
const Name = "http"

func init() { transports.Register(Name, Factory) }

// TransportConfig is the section of an http transport that Factory decodes:
// the Publisher's keys, used when url is set, and a Receiver's under
// receiver:. One side may be left out.
type TransportConfig struct {
	Config `koanf:",squash"`
	// Receiver, when present (receiver: {} will do), makes the transport
	// receive: on a *Server with Listen set, otherwise as a *Receiver to
	// mount in your own server, which takes only the ReceiverConfig keys.
	Receiver *ServerConfig `koanf:"receiver"`
}

// Factory builds the HTTP transport from its configuration section: a
// Publisher when url is set, and a subscriber, an http.Handler, when the
// section has a receiver: sub-section (see TransportConfig).
func Factory(s transports.Settings) (transports.Transport, error) {
	var cfg TransportConfig
	if err := s.Decode(&cfg); err != nil {
		return transports.Transport{}, fmt.Errorf("httptransport: config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return transports.Transport{}, fmt.Errorf("httptransport: config: %w", err)
	}
	var t transports.Transport
	if cfg.URL != "" {
		pub, err := NewPublisher(cfg.Config, s.Logger)
		if err != nil {
			return transports.Transport{}, err
		}
		t.Publisher = pub
		if cfg.TLS.InsecureSkipVerify {
			// watermill's loggers have no warning level: an error is what
			// an operator's default level keeps.
			s.Logger.Error("httptransport: tls.insecure_skip_verify is on: the server's certificate is not checked, "+
				"so anyone on the network path can read and change the events", errInsecureSkipVerify,
				watermill.LogFields{"transport": s.Name})
		}
	}
	if rc := cfg.Receiver; rc != nil {
		reg := WithRegisterer(s.Registerer)
		var err error
		if rc.Listen == "" {
			t.Subscriber, err = NewReceiver(rc.ReceiverConfig, s.Logger, reg)
		} else if t.Subscriber, err = newServer(*rc, s.Logger, reg); err != nil {
			err = fmt.Errorf("httptransport: config: %w", transports.FieldErrorf("receiver.listen", "%v", err))
		}
		if err != nil {
			if t.Publisher != nil {
				_ = t.Publisher.Close()
			}
			return transports.Transport{}, err
		}
	}
	return t, nil
}

// Validate reports every invalid key, each by name (receiver keys as
// receiver.<key>).
func (c *TransportConfig) Validate() error {
	var errs []error
	switch {
	case c.URL == "" && c.Receiver == nil:
		errs = append(errs, transports.FieldErrorf("url", "must be set to publish, or receiver: to receive (or both)"))
	case c.URL == "" && !reflect.ValueOf(c.Config).IsZero():
		// Receive only: publisher keys would be silently unused.
		errs = append(errs, transports.FieldErrorf("url", "must be set: the section has publisher keys, which do nothing without it"))
	case c.URL != "":
		errs = append(errs, c.Config.Validate())
	}
	if c.Receiver != nil {
		errs = append(errs, underKey("receiver", c.Receiver.validate(false)))
	}
	return errors.Join(errs...)
}

// underKey puts the keys of err's field errors under key.
func underKey(key string, err error) error {
	fields, only := transports.FieldErrors(err)
	if !only {
		return err // nil, or not a field error: none is
	}
	errs := make([]error, len(fields))
	for i, fe := range fields {
		errs[i] = &transports.FieldError{Key: key + "." + fe.Key, Reason: fe.Reason}
	}
	return errors.Join(errs...)
}

var errInsecureSkipVerify = errors.New("httptransport: TLS certificate verification is off")

var _ transports.Factory = Factory
