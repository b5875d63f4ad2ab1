package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-go/switchyard/transports"
)

// Name is the type name the JetStream transport registers under.
const Name = "jetstream"

func init() { transports.Register(Name, Factory) }

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("jetstream: closed")

var errInsecureSkipVerify = errors.New("jetstream: TLS certificate verification is off")

// Factory builds a publisher and, when a consumer is configured, a
// subscriber that share one connection; the transport closes the
// connection after both.
func Factory(s transports.Settings) (transports.Transport, error) {
	var cfg Config
	if err := s.Decode(&cfg); err != nil {
		return transports.Transport{}, err
	}
	if err := cfg.Validate(); err != nil {
		return transports.Transport{}, err
	}
	if cfg.TLS.InsecureSkipVerify {
		// watermill's loggers have no warning level: an error is what
		// an operator's default level keeps.
		s.Logger.Error("jetstream: tls.insecure_skip_verify is on: the server's certificate is not checked, "+
			"so anyone on the network path can read and change the events", errInsecureSkipVerify,
			watermill.LogFields{"transport": s.Name})
	}
	nc, err := Connect(cfg, s.Name, s.Logger)
	if err != nil {
		return transports.Transport{}, err
	}
	shared := &sharedConn{n: 1, nc: nc}
	pub, err := NewPublisher(cfg, nc, s.Logger)
	if err != nil {
		nc.Close()
		return transports.Transport{}, err
	}
	t := transports.Transport{Publisher: &pubCloser{Publisher: pub, shared: shared}}
	if cfg.Consumer != "" {
		sub, err := NewSubscriber(cfg, nc, s.Logger, NewMetrics(s.Registerer))
		if err != nil {
			_ = pub.Close()
			nc.Close()
			return transports.Transport{}, err
		}
		shared.n++
		t.Subscriber = &subCloser{Subscriber: sub, shared: shared}
	}
	return t, nil
}

// Connect opens a connection as cfg says, which keeps reconnecting until it
// is closed: it returns at once even when no server answers yet. Its
// disconnections and errors go to logger. name labels the connection on the
// server's monitoring endpoints.
func Connect(cfg Config, name string, logger watermill.LoggerAdapter) (*nats.Conn, error) {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("jetstream: config: %w", err)
	}
	cfg.setDefaults()
	opts, err := cfg.options(name)
	if err != nil {
		return nil, fmt.Errorf("jetstream: config: %w", err)
	}
	fields := watermill.LogFields{"transport": name}
	opts = append(opts,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Error("jetstream: disconnected; reconnecting", err, fields)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("jetstream: reconnected", fields.Add(watermill.LogFields{"server": nc.ConnectedAddr()}))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			logger.Error("jetstream: connection error", err, fields)
		}),
	)
	nc, err := nats.Connect(strings.Join(cfg.serverURLs(), ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("jetstream: connect: %w", err)
	}
	return nc, nil
}

// provisioner creates the streams of topics on first use, once each.
type provisioner struct {
	cfg   *Config
	js    js.JetStream
	ready sync.Map // stream names known to exist
}

func newProvisioner(cfg *Config, j js.JetStream) *provisioner {
	return &provisioner{cfg: cfg, js: j}
}

// known reports whether topic's stream is known to exist, with no lock
// and no allocation: a publish asks it every time.
func (p *provisioner) known(topic string) bool {
	_, ok := p.ready.Load(p.cfg.streamFor(topic))
	return ok
}

// ensure makes sure the stream that holds topic exists, creating it when
// Provision is on. Without Provision it checks nothing: a publish to a
// subject that no stream holds fails with js.ErrNoStreamResponse.
func (p *provisioner) ensure(ctx context.Context, topic string) error {
	if !p.cfg.provision() {
		return nil
	}
	name := p.cfg.streamFor(topic)
	subjects := p.cfg.Subjects
	if p.cfg.Stream == "" {
		subjects = []string{topic}
	}
	return p.ensureStream(ctx, name, subjects)
}

// ensureDeadLetter makes sure the dead-letter stream exists.
func (p *provisioner) ensureDeadLetter(ctx context.Context) error {
	if !p.cfg.provision() {
		return nil
	}
	return p.ensureStream(ctx, p.cfg.DeadLetterStream, p.cfg.deadLetterStreamSubjects())
}

func (p *provisioner) ensureStream(ctx context.Context, name string, subjects []string) error {
	if _, ok := p.ready.Load(name); ok {
		return nil
	}
	_, err := p.js.Stream(ctx, name)
	if errors.Is(err, js.ErrStreamNotFound) {
		_, err = p.js.CreateStream(ctx, p.cfg.streamConfig(name, subjects))
		if errors.Is(err, js.ErrStreamNameAlreadyInUse) {
			err = nil // made meanwhile, by another process
		}
	}
	if err != nil {
		return fmt.Errorf("jetstream: stream %q: %w", name, err)
	}
	p.ready.Store(name, struct{}{})
	return nil
}

// forget is called when a stream was found missing: the next ensure looks
// again.
func (p *provisioner) forget(topic string) {
	p.ready.Delete(p.cfg.streamFor(topic))
}

// callTimeout bounds a JetStream API call made outside a publish.
const callTimeout = 5 * time.Second

// sharedConn counts the users of one connection: the last Close closes it.
type sharedConn struct {
	mu sync.Mutex
	n  int
	nc *nats.Conn
}

func (s *sharedConn) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n--
	if s.n == 0 {
		s.nc.Close()
	}
}

type pubCloser struct {
	*Publisher
	shared *sharedConn
	once   sync.Once
}

func (c *pubCloser) Close() error {
	err := c.Publisher.Close()
	c.once.Do(c.shared.release)
	return err
}

type subCloser struct {
	*Subscriber
	shared *sharedConn
	once   sync.Once
}

func (c *subCloser) Close() error {
	err := c.Subscriber.Close()
	c.once.Do(c.shared.release)
	return err
}

var (
	_ message.Publisher            = (*Publisher)(nil)
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*subCloser)(nil)
)
