package middleware_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/middleware"
)

// The same message, delivered once by Redis Streams and once by HTTP after
// a fallback, reaches the handler once; the second delivery is acked.
func ExampleNewDedupe() {
	dedupe, err := middleware.NewDedupe(middleware.DedupeConfig{TTL: 10 * time.Minute})
	if err != nil {
		panic(err)
	}
	handler := dedupe.Middleware(func(m *message.Message) ([]*message.Message, error) {
		fmt.Printf("handled %s\n", m.Payload)
		return nil, nil
	})

	viaRedis := message.NewMessage("0b5d9a8e-message-1", []byte("hello, via redis"))
	viaHTTP := message.NewMessage(viaRedis.UUID, []byte("hello, via http"))
	for _, m := range []*message.Message{viaRedis, viaHTTP} {
		if _, err := handler(m); err != nil {
			panic(err)
		}
	}
	fmt.Println("remembered:", dedupe.Len())
	// Output:
	// handled hello, via redis
	// remembered: 1
}

// Handler wraps a handler that publishes nothing, such as the one
// bus.Handle takes: b.Handle("gateway", "events:chat", dedupe.Handler(h)).
// A delivery that fails is not remembered, so its redelivery is handled.
func ExampleDedupe_Handler() {
	dedupe, err := middleware.NewDedupe(middleware.DedupeConfig{})
	if err != nil {
		panic(err)
	}
	attempts := 0
	h := dedupe.Handler(func(m *message.Message) error {
		attempts++
		if attempts == 1 {
			return errors.New("hub unavailable")
		}
		fmt.Printf("delivered %s on attempt %d\n", m.Payload, attempts)
		return nil
	})

	m := message.NewMessage("0b5d9a8e-message-2", []byte("typing"))
	for range 3 { // the first delivery, its redelivery, a duplicate
		fmt.Println("error:", h(m))
	}
	// Output:
	// error: hub unavailable
	// delivered typing on attempt 2
	// error: <nil>
	// error: <nil>
}
