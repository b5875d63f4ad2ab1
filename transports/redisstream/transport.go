package redisstream

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
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
	// The publisher and the subscriber share the client: the last Close
	// closes it.
	var users atomic.Int32
	users.Store(1)
	release := func() error {
		if users.Add(-1) == 0 {
			return closeClient(client)
		}
		return nil
	}
	pub, err := NewPublisher(cfg, client, s.Logger)
	if err != nil {
		_ = closeClient(client)
		return transports.Transport{}, err
	}
	pub.release = release
	t := transports.Transport{Publisher: pub}
	if cfg.ConsumerGroup != "" {
		sub, err := NewSubscriber(cfg, client, s.Logger, NewMetrics(s.Registerer))
		if err != nil {
			_ = pub.Close()
			return transports.Transport{}, err
		}
		users.Add(1)
		sub.release = release
		t.Subscriber = sub
	}
	return t, nil
}

var errInsecureSkipVerify = errors.New("redisstream: TLS certificate verification is off")

// goRedisLog takes go-redis's log lines (a failed dial, a dropped
// connection), which would otherwise go to stderr, to the loggers of the
// clients this package made. go-redis has one logger per process
// (redis.SetLogger) and its lines do not name their client, so each line
// goes to every live client's logger, or with none live to the most recent
// one. An application that calls redis.SetLogger later takes them over.
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
	err := errors.New(strings.TrimPrefix(fmt.Sprintf(format, args...), "redis: "))
	r.mu.Lock()
	loggers := slices.Collect(maps.Values(r.live))
	if len(loggers) == 0 && r.last != nil {
		loggers = append(loggers, r.last)
	}
	r.mu.Unlock()
	for i, l := range loggers {
		// A logger shared by several clients (a bus's) gets a line once.
		if !reflect.ValueOf(l).Comparable() || !slices.Contains(loggers[:i], l) {
			l.Error("go-redis", err, watermill.LogFields{"transport": Name})
		}
	}
}
