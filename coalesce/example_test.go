package coalesce_test

import (
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/coalesce"
)

// The first value of a window is the caller's to send; the last one comes
// out of emit when the window ends, or when Close flushes it.
func ExampleNew() {
	c, err := coalesce.New(coalesce.Config{}, func(key, v string) {
		fmt.Println("trailing:", key, v)
	})
	if err != nil {
		panic(err)
	}
	for _, v := range []string{"h", "he", "hel", "hell", "hello"} {
		if res := c.Add("conversation-1", v, time.Minute); res.Send() {
			fmt.Println(res.String()+":", "conversation-1", v)
		}
	}
	c.Close()
	// Output:
	// leading: conversation-1 h
	// trailing: conversation-1 hello
}

// In a handler, the middleware lets the first typing event of a key through
// and acks the next ones; the last of them comes back through republish
// (here, by hand) when the window ends or Close flushes it.
func ExampleNewMiddleware() {
	var republished []*message.Message
	mw, err := coalesce.NewMiddleware(coalesce.MiddlewareConfig{
		Windows: map[string]time.Duration{"typing": time.Minute},
	}, func(m *message.Message) error {
		republished = append(republished, m)
		return nil
	})
	if err != nil {
		panic(err)
	}
	handler := mw.Middleware(func(m *message.Message) ([]*message.Message, error) {
		fmt.Printf("published %s (republished: %t)\n", m.Payload, coalesce.IsRepublished(m))
		return nil, nil
	})
	for _, payload := range []string{"typing 1", "typing 2", "typing 3"} {
		m := message.NewMessage(payload, []byte(payload))
		m.Metadata.Set("event_type", "typing")
		m.Metadata.Set("event_key", "request-7")
		if _, err := handler(m); err != nil {
			panic(err)
		}
	}
	if err := mw.Close(); err != nil {
		panic(err)
	}
	for _, m := range republished {
		_, _ = handler(m)
	}
	// Output:
	// published typing 1 (republished: false)
	// published typing 3 (republished: true)
}
