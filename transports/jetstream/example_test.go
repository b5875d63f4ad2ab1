package jetstream_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/switchyard-go/switchyard/transports/jetstream"
)

// A publisher and a subscriber of one consumer, on a NATS server embedded
// in the process for the example (any JetStream server will do).
func Example() {
	dir, err := os.MkdirTemp("", "jetstream-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		panic(err)
	}
	srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if !srv.ReadyForConnections(10 * time.Second) {
		panic("server not ready")
	}

	cfg := jetstream.Config{URL: srv.ClientURL(), Consumer: "hub"}
	pub, err := jetstream.NewPublisher(cfg, nil, nil)
	if err != nil {
		panic(err)
	}
	defer pub.Close()
	sub, err := jetstream.NewSubscriber(cfg, nil, nil, nil)
	if err != nil {
		panic(err)
	}
	defer sub.Close()

	msg := message.NewMessage("6f1c1a3e-8d2b-4c55-9f0e-2b1f6c7d8e9a", []byte(`{"text":"hello"}`))
	msg.Metadata.Set("event_type", "chat_message")
	msg.Metadata.Set("event_key", "req-123")
	if err := pub.Publish("events:chat", msg); err != nil {
		panic(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.Subscribe(ctx, "events:chat")
	if err != nil {
		panic(err)
	}
	var got *message.Message
	select {
	case got = <-ch:
	case <-time.After(30 * time.Second):
		panic("no message")
	}
	got.Ack()
	fmt.Println(got.UUID, got.Metadata.Get("event_type"), got.Metadata.Get("event_key"), string(got.Payload))
	// Output:
	// 6f1c1a3e-8d2b-4c55-9f0e-2b1f6c7d8e9a chat_message req-123 {"text":"hello"}
}
