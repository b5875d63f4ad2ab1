package redisstream_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// A publisher and a subscriber in one consumer group, against a throwaway
// redis-server (in a test: redistest.Start(t)).
func ExampleNewSubscriber() {
	srv, stop := startRedis()
	defer stop()

	cfg := redisstream.Config{URL: srv.URL(), ConsumerGroup: "hub", Consumer: "example"}
	pub, err := redisstream.NewPublisher(cfg, nil, nil)
	if err != nil {
		panic(err)
	}
	defer pub.Close()
	sub, err := redisstream.NewSubscriber(cfg, nil, nil, nil)
	if err != nil {
		panic(err)
	}
	defer sub.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, "events:chat")
	if err != nil {
		panic(err)
	}

	msg := message.NewMessage("6f1c1a3e-8d2b-4c55-9f0e-2b1f6c7d8e9a", []byte(`{"text":"hello"}`))
	msg.Metadata.Set("event_type", "chat_message")
	msg.Metadata.Set("event_key", "req-123")
	if err := pub.Publish("events:chat", msg); err != nil {
		panic(err)
	}

	got := <-msgs
	fmt.Println(got.UUID, got.Metadata.Get("event_type"), string(got.Payload))
	got.Ack() // XACK: the entry leaves the group's pending list
	// Output:
	// 6f1c1a3e-8d2b-4c55-9f0e-2b1f6c7d8e9a chat_message {"text":"hello"}
}

// startRedis starts a redis-server as redistest.Start(t) does in a test,
// with exampleTB standing in for t; stop stops it.
func startRedis() (srv *redistest.Server, stop func()) {
	tb := &exampleTB{}
	return redistest.Start(tb), tb.cleanup
}

// exampleTB is the part of testing.TB that redistest uses; a failure
// panics. (An example has no *testing.T.)
type exampleTB struct {
	testing.TB
	cleanups []func()
}

func (*exampleTB) Helper()                      {}
func (*exampleTB) Failed() bool                 { return false }
func (*exampleTB) Name() string                 { return "ExampleNewSubscriber" }
func (*exampleTB) Logf(string, ...any)          {}
func (*exampleTB) Fatal(args ...any)            { panic(fmt.Sprint(args...)) }
func (*exampleTB) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
func (*exampleTB) Error(args ...any)            { panic(fmt.Sprint(args...)) }
func (*exampleTB) Skipf(f string, args ...any)  { panic(fmt.Sprintf(f, args...)) }
func (tb *exampleTB) Cleanup(f func())          { tb.cleanups = append(tb.cleanups, f) }

func (tb *exampleTB) TempDir() string {
	dir, err := os.MkdirTemp("", "redistest-example-")
	if err != nil {
		panic(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (tb *exampleTB) cleanup() {
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
}
