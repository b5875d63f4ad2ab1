package bus_test

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/bus"
)

func ExampleNew() {
	cfg, err := bus.LoadConfig() // defaults: the memory transport alone
	if err != nil {
		panic(err)
	}
	b, err := bus.New(cfg, bus.WithLoggerAdapter(watermill.NopLogger{}))
	if err != nil {
		panic(err)
	}
	delivered := make(chan struct{})
	_ = b.Handle("hub", "events:chat", func(m *message.Message) error {
		fmt.Println(m.Metadata.Get(bus.MetaEventType), m.Metadata.Get(bus.MetaEventKey), string(m.Payload))
		close(delivered)
		return nil
	})
	go func() { _ = b.Run(context.Background()) }()
	<-b.Running()

	if err := b.Publish("events:chat", bus.NewMessage("chat_message", "req-123", []byte("hello"))); err != nil {
		panic(err)
	}
	<-delivered
	fmt.Println(b.Close())
	// Output:
	// chat_message req-123 hello
	// <nil>
}

func ExampleBus_PublishSync() {
	b, _ := bus.New(bus.DefaultConfig(), bus.WithLoggerAdapter(watermill.NopLogger{}))
	go func() { _ = b.Run(context.Background()) }()
	<-b.Running()
	defer b.Close()

	// Returns once the transport took the event, or with its final error.
	err := b.PublishSync(context.Background(), "events:chat", bus.NewMessage("typing", "req-123", nil))
	fmt.Println(err)
	// Output: <nil>
}

func ExampleBus_Use() {
	b, _ := bus.New(bus.DefaultConfig(), bus.WithLoggerAdapter(watermill.NopLogger{}))
	_ = b.Use(func(next message.HandlerFunc) message.HandlerFunc {
		return func(m *message.Message) ([]*message.Message, error) {
			m.Metadata.Set("tenant", "acme")
			return next(m)
		}
	})
	got := make(chan string, 1)
	_ = b.Handle("hub", "events", func(m *message.Message) error { got <- m.Metadata.Get("tenant"); return nil })
	go func() { _ = b.Run(context.Background()) }()
	<-b.Running()
	defer b.Close()

	_ = b.Publish("events", bus.NewMessage("typing", "k", nil))
	fmt.Println(<-got)
	// Output: acme
}
