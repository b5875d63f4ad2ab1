package bustest_test

import (
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/bustest"
)

// The code under test publishes on the bus it is given; the test gives it a
// bustest bus and looks at what reached the transport.
func ExampleNew() {
	t := &testing.T{} // in a real test, the test's own t
	b := bustest.New(t)
	defer b.Close()

	_ = b.Publish("events:chat", bus.NewMessage("typing", "req-1", nil))

	recs := b.WaitPublishedOfType(t, "events:chat", "typing", 1)
	fmt.Println(recs[0].EventType, recs[0].Key)
	// Output: typing req-1
}

// A stage of the application's own, tested on the in-memory bus: it stamps
// each event and drops the ones of type "spam" (a stage drops an event by
// returning no messages and no error).
func ExampleWithMiddleware() {
	stamp := func(h message.HandlerFunc) message.HandlerFunc {
		return func(m *message.Message) ([]*message.Message, error) {
			if m.Metadata.Get(bus.MetaEventType) == "spam" {
				return nil, nil
			}
			m.Metadata.Set("checked", "yes")
			return h(m)
		}
	}
	t := &testing.T{} // in a real test, the test's own t
	b := bustest.New(t, bustest.WithMiddleware(stamp))
	defer b.Close()

	_ = b.Publish("events:chat", bus.NewMessage("spam", "room-1", nil))
	_ = b.Publish("events:chat", bus.NewMessage("chat_message", "room-1", nil))

	recs := b.WaitPublishedOfType(t, "events:chat", "chat_message", 1)
	fmt.Println(recs[0].Metadata["checked"], len(b.PublishedOfType("events:chat", "spam")))
	// Output: yes 0
}
