package redisstream

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-go/switchyard/transports"
)

// Name is the type name the Redis Streams transport registers under.
const Name = "redisstream"

func init() { transports.Register(Name, Factory) }

// Factory builds a publisher and, when a consumer group is configured, a
// subscriber that share one client; the transport closes the client after
// both.
func Factory(s transports.Settings) (transports.Transport, error) {
	var cfg Config
	if err := s.Decode(&cfg); err != nil {
		return transports.Transport{}, err
	}
	if err := cfg.Validate(); err != nil {
		return transports.Transport{}, err
	}
	o, err := cfg.universalOptions()
	if err != nil {
		return transports.Transport{}, fmt.Errorf("redisstream: config: %w", err)
	}
	if o.TLSConfig != nil && o.TLSConfig.InsecureSkipVerify {
		// watermill's loggers have no warning level: an error is what
		// an operator's default level keeps.
		s.Logger.Error("redisstream: tls.insecure_skip_verify is on: the server's certificate is not checked, "+
			"so anyone on the network path can read and change the events", errInsecureSkipVerify,
			watermill.LogFields{"transport": s.Name})
	}
	client := redis.NewUniversalClient(o)
	goRedisLog.add(client, s.Logger)
	shared := &sharedClient{client: client, n: 1}
	pub, err := NewPublisher(cfg, client, s.Logger)
	if err != nil {
		_ = closeClient(client)
		return transports.Transport{}, err
	}
	t := transports.Transport{Publisher: &closer{Publisher: pub, release: shared.releaser()}}
	if cfg.ConsumerGroup != "" {
		sub, err := NewSubscriber(cfg, client, s.Logger, NewMetrics(s.Registerer))
		if err != nil {
			_ = pub.Close()
			_ = closeClient(client)
			return transports.Transport{}, err
		}
		shared.n++
		t.Subscriber = &subCloser{Subscriber: sub, release: shared.releaser()}
	}
	return t, nil
}

var errInsecureSkipVerify = errors.New("redisstream: TLS certificate verification is off")

// goRedisLog takes go-redis's log lines (a failed dial, a connection
// dropped for unread data) to the loggers of the clients this package
// made, which would otherwise go to stderr, past the bus's logger.
//
// go-redis v9.23 has one logger for the whole process (redis.SetLogger),
// none per client, and its lines say nothing of their client: its dials
// run in goroutines of their own, on context.Background(). So one
// forwarder is installed, once, when the first client is made, and each
// line goes to the logger of every live client; when none is live, to the
// most recent one, so that the lines of a client closing still land
// somewhere. An application that calls redis.SetLogger after that takes
// the lines over.
var goRedisLog = &redisLogRouter{live: map[redis.UniversalClient]watermill.LoggerAdapter{}}

type redisLogRouter struct {
	install sync.Once
	mu      sync.Mutex
	live    map[redis.UniversalClient]watermill.LoggerAdapter
	last    watermill.LoggerAdapter
}

// add sends go-redis's lines to logger while client is live.
func (r *redisLogRouter) add(client redis.UniversalClient, logger watermill.LoggerAdapter) {
	r.install.Do(func() { redis.SetLogger(r) })
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live[client] = logger
	r.last = logger
}

// remove is called when client is closed.
func (r *redisLogRouter) remove(client redis.UniversalClient) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.live, client)
}

// Printf implements go-redis's logging interface.
func (r *redisLogRouter) Printf(_ context.Context, format string, args ...any) {
	line := strings.TrimPrefix(fmt.Sprintf(format, args...), "redis: ")
	for _, l := range r.loggers() {
		l.Error("go-redis", errors.New(line), watermill.LogFields{"transport": Name})
	}
}

// loggers are the distinct loggers of the live clients, or the last one.
func (r *redisLogRouter) loggers() []watermill.LoggerAdapter {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.live) == 0 {
		if r.last == nil {
			return nil
		}
		return []watermill.LoggerAdapter{r.last}
	}
	out := make([]watermill.LoggerAdapter, 0, len(r.live))
	for _, l := range r.live {
		// A logger shared by several clients (a bus's) gets a line once.
		if v := reflect.ValueOf(l); v.Comparable() && slices.Contains(out, l) {
			continue
		}
		out = append(out, l)
	}
	return out
}

// sharedClient counts the users of one client: the last Close closes it.
type sharedClient struct {
	client redis.UniversalClient
	mu     sync.Mutex
	n      int
}

// releaser returns the release of one user, which counts once.
func (s *sharedClient) releaser() func() error {
	var once sync.Once
	return func() (err error) {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.n--; s.n == 0 {
				err = closeClient(s.client)
			}
		})
		return err
	}
}

type closer struct {
	*Publisher
	release func() error
}

func (c *closer) Close() error { return errors.Join(c.Publisher.Close(), c.release()) }

type subCloser struct {
	*Subscriber
	release func() error
}

func (c *subCloser) Close() error { return errors.Join(c.Subscriber.Close(), c.release()) }

var (
	_ message.Publisher            = (*Publisher)(nil)
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*subCloser)(nil)
)
