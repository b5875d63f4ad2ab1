package redisstream

import (
	"errors"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

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
	client, err := newClient(&cfg)
	if err != nil {
		return transports.Transport{}, err
	}
	shared := &sharedClient{n: 1}
	pub, err := NewPublisher(cfg, client, s.Logger)
	if err != nil {
		_ = client.Close()
		return transports.Transport{}, err
	}
	t := transports.Transport{Publisher: &closer{Publisher: pub, shared: shared, close: client.Close}}
	if cfg.ConsumerGroup != "" {
		sub, err := NewSubscriber(cfg, client, s.Logger, NewMetrics(s.Registerer))
		if err != nil {
			_ = pub.Close()
			_ = client.Close()
			return transports.Transport{}, err
		}
		shared.n++
		t.Subscriber = &subCloser{Subscriber: sub, shared: shared, close: client.Close}
	}
	return t, nil
}

// sharedClient counts the users of one client: the last Close closes it.
type sharedClient struct {
	mu sync.Mutex
	n  int
}

func (s *sharedClient) release(close func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n--
	if s.n == 0 {
		return close()
	}
	return nil
}

type closer struct {
	*Publisher
	shared *sharedClient
	close  func() error
	once   sync.Once
}

func (c *closer) Close() error {
	err := c.Publisher.Close()
	c.once.Do(func() { err = errors.Join(err, c.shared.release(c.close)) })
	return err
}

type subCloser struct {
	*Subscriber
	shared *sharedClient
	close  func() error
	once   sync.Once
}

func (c *subCloser) Close() error {
	err := c.Subscriber.Close()
	c.once.Do(func() { err = errors.Join(err, c.shared.release(c.close)) })
	return err
}

var (
	_ message.Publisher            = (*Publisher)(nil)
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*subCloser)(nil)
)
