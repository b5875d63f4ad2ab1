package redisstream_test

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-go/switchyard/transports/redisstream"
)

// The flat format, for consumers in other languages: each metadata key is a
// field of its own, as plain text. (The client here prints each XADD instead
// of sending it, so the example needs no Redis.)
func Example_flatFormat() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	client.AddHook(printXAdd{})
	defer client.Close()

	pub, err := redisstream.NewPublisher(redisstream.Config{Format: redisstream.FormatFlat}, client, nil)
	if err != nil {
		panic(err)
	}
	defer pub.Close()

	msg := message.NewMessage("6f1c1a3e-8d2b-4c55-9f0e-2b1f6c7d8e9a", []byte(`{"text":"hello"}`))
	msg.Metadata.Set("event_type", "chat_message")
	msg.Metadata.Set("event_key", "req-123")
	msg.Metadata.Set("published_at", "2025-01-02T03:04:05.123456789Z")
	msg.Metadata.Set("transport", "redis")
	if err := pub.Publish("events:chat", msg); err != nil {
		panic(err)
	}
	// Unordered output:
	// XADD events:chat *
	// id = "6f1c1a3e-8d2b-4c55-9f0e-2b1f6c7d8e9a"
	// event_type = "chat_message"
	// event_key = "req-123"
	// published_at = "2025-01-02T03:04:05.123456789Z"
	// meta.transport = "redis"
	// payload = "{\"text\":\"hello\"}"
}

// The default format, watermill-redisstream's: the metadata is one
// MessagePack map of strings.
func Example_watermillFormat() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	client.AddHook(printXAdd{})
	defer client.Close()

	pub, err := redisstream.NewPublisher(redisstream.Config{}, client, nil)
	if err != nil {
		panic(err)
	}
	defer pub.Close()

	msg := message.NewMessage("6f1c1a3e-8d2b-4c55-9f0e-2b1f6c7d8e9a", []byte(`{"text":"hi"}`))
	msg.Metadata.Set("event_type", "typing")
	if err := pub.Publish("events:chat", msg); err != nil {
		panic(err)
	}
	// Output:
	// XADD events:chat *
	// _watermill_message_uuid = "6f1c1a3e-8d2b-4c55-9f0e-2b1f6c7d8e9a"
	// metadata = "\x81\xaaevent_type\xa6typing"
	// payload = "{\"text\":\"hi\"}"
}

// printXAdd is a go-redis hook that prints each XADD of a pipeline, one
// field per line, and answers it without a server; it refuses everything
// else.
type printXAdd struct{}

func (printXAdd) DialHook(redis.DialHook) redis.DialHook {
	return func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("example: no Redis")
	}
}

func (printXAdd) ProcessHook(redis.ProcessHook) redis.ProcessHook {
	return func(_ context.Context, cmd redis.Cmder) error {
		cmd.SetErr(errors.New("example: no Redis"))
		return cmd.Err()
	}
}

func (printXAdd) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(_ context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			args := cmd.Args()
			xadd, ok := cmd.(*redis.StringCmd)
			if !ok || cmd.Name() != "xadd" || len(args) < 3 {
				cmd.SetErr(errors.New("example: no Redis"))
				continue
			}
			fmt.Printf("XADD %v %v\n", args[1], args[2])
			for i := 3; i+1 < len(args); i += 2 {
				fmt.Printf("%v = %q\n", args[i], args[i+1])
			}
			xadd.SetVal("1735787045123-0")
		}
		return nil
	}
}
