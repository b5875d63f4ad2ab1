package bustest_test

import (
	"fmt"
	"testing"

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
