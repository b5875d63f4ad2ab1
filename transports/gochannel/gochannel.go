package gochannel

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/switchyard-go/switchyard/transports"
)

// Name is the type name the gochannel transport registers under.
const Name = "gochannel"

func init() { transports.Register(Name, Factory) }

// Config mirrors Watermill's gochannel.Config with koanf tags. The zero value
// is Watermill's default: unbuffered, not persistent, Publish not blocking.
type Config struct {
	// OutputChannelBuffer is the buffer of each subscriber's channel.
	OutputChannelBuffer int64 `koanf:"output_channel_buffer"`
	// Persistent keeps every published message in memory, for as long as the
	// process lives, and replays them to each new subscriber of the topic.
	Persistent bool `koanf:"persistent"`
	// BlockPublishUntilSubscriberAck makes Publish wait until every subscriber
	// acked the message. It does not wait when the topic has no subscriber.
	BlockPublishUntilSubscriberAck bool `koanf:"block_publish_until_subscriber_ack"`
	// PreserveContext delivers each message with the context it was published
	// with, instead of one canceled once the message is handled.
	PreserveContext bool `koanf:"preserve_context"`
}

// Validate reports every invalid field, joined, each a
// *transports.FieldError whose key is the field's koanf key: the bus names
// it by its full key (transports.<name>.output_channel_buffer).
func (c Config) Validate() error {
	var errs []error
	if c.OutputChannelBuffer < 0 {
		errs = append(errs, transports.FieldErrorf("output_channel_buffer", "must not be negative, got %d", c.OutputChannelBuffer))
	}
	return errors.Join(errs...)
}

func (c Config) watermill() gochannel.Config {
	return gochannel.Config{
		OutputChannelBuffer:            c.OutputChannelBuffer,
		Persistent:                     c.Persistent,
		BlockPublishUntilSubscriberAck: c.BlockPublishUntilSubscriberAck,
		PreserveContext:                c.PreserveContext,
	}
}

// Factory builds a gochannel transport from its configuration section; the
// one GoChannel is both its publisher and its subscriber.
func Factory(s transports.Settings) (transports.Transport, error) {
	var cfg Config
	if err := s.Decode(&cfg); err != nil {
		return transports.Transport{}, fmt.Errorf("gochannel: config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return transports.Transport{}, fmt.Errorf("gochannel: config: %w", err)
	}
	pubSub := gochannel.NewGoChannel(cfg.watermill(), s.Logger)
	return transports.Transport{Publisher: pubSub, Subscriber: pubSub, InProcess: true}, nil
}

var (
	_ transports.Factory = Factory
	_ message.Publisher  = (*gochannel.GoChannel)(nil)
	_ message.Subscriber = (*gochannel.GoChannel)(nil)
)
