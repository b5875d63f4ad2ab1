package memory_test

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/transports/memory"
)

// Messages that share a key arrive in publish order, even those published
// before anyone subscribed.
func ExampleNewBroker() {
	b, err := memory.NewBroker(memory.Config{Lanes: 4, QueueSize: 100, OnFull: memory.Reject}, nil)
	if err != nil {
		panic(err)
	}
	defer b.Close()

	for i, text := range []string{"hello", "are you there?", "bye"} {
		m := message.NewMessage(fmt.Sprint(i), []byte(text))
		m.Metadata.Set(memory.KeyMetadata, "room-42")
		if err := b.Publish("chat", m); err != nil {
			panic(err)
		}
	}

	msgs, err := b.Subscribe(context.Background(), "chat")
	if err != nil {
		panic(err)
	}
	for range 3 {
		m := <-msgs
		fmt.Printf("%s: %s\n", m.Metadata.Get(memory.KeyMetadata), m.Payload)
		m.Ack()
	}
	fmt.Println("published:", b.Stats().Published)
	// Output:
	// room-42: hello
	// room-42: are you there?
	// room-42: bye
	// published: 3
}
