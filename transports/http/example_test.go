package httptransport_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"

	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// A Publisher posts each message to the hub as a CloudEvent; a Receiver
// mounted in the hub's own mux hands it to a subscriber and answers once it
// was acked.
func ExampleNewPublisher() {
	receiver, err := httptransport.NewReceiver(httptransport.ReceiverConfig{}, nil)
	if err != nil {
		panic(err)
	}
	defer receiver.Close()
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/events/{topic}", receiver)
	hub := httptest.NewServer(mux)
	defer hub.Close()

	events, err := receiver.Subscribe(context.Background(), "events:chat")
	if err != nil {
		panic(err)
	}
	go func() {
		for msg := range events {
			fmt.Println("hub got", msg.UUID, msg.Metadata.Get("event_type"), string(msg.Payload))
			msg.Ack()
		}
	}()

	publisher, err := httptransport.NewPublisher(httptransport.Config{
		URL: hub.URL + "/api/v1/events/{topic}",
	}, nil)
	if err != nil {
		panic(err)
	}
	defer publisher.Close()

	msg := message.NewMessage("0193-aa", []byte(`{"typing":true}`))
	msg.Metadata.Set("event_type", "typing")
	if err := publisher.Publish("events:chat", msg); err != nil {
		panic(err)
	}
	fmt.Println("published")
	// Output:
	// hub got 0193-aa typing {"typing":true}
	// published
}

// A 4xx other than 429 is permanent: the pipeline falls back or
// dead-letters at once instead of retrying.
func ExampleStatusError() {
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnprocessableEntity)
	}))
	defer hub.Close()
	publisher, err := httptransport.NewPublisher(httptransport.Config{URL: hub.URL}, nil)
	if err != nil {
		panic(err)
	}
	defer publisher.Close()

	err = publisher.Publish("events:chat", message.NewMessage("0193-ab", nil))
	var status *httptransport.StatusError
	fmt.Println(errors.Is(err, httptransport.ErrPermanent), errors.As(err, &status) && status.Code == 422)
	// Output:
	// true true
}

// With no subscription to its topic the Receiver answers 503 and a
// Retry-After, so the sender keeps the event and tries again.
func ExampleNewReceiver() {
	receiver, err := httptransport.NewReceiver(httptransport.ReceiverConfig{Topic: "inbound"}, nil)
	if err != nil {
		panic(err)
	}
	defer receiver.Close()

	rec := httptest.NewRecorder()
	receiver.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}")))
	fmt.Println(rec.Code, rec.Header().Get("Retry-After"))
	// Output:
	// 503 1
}

// A Server is a Receiver on an address of its own, what an http transport
// with receiver.listen builds: here the sender's Publish returns once the
// subscriber acked the event.
func ExampleNewServer() {
	server, err := httptransport.NewServer(httptransport.ServerConfig{
		Listen: "127.0.0.1:0", // a free port; Addr tells which
	}, nil)
	if err != nil {
		panic(err)
	}
	defer server.Close() // shuts the server down, then the Receiver

	events, err := server.Subscribe(context.Background(), "events:chat")
	if err != nil {
		panic(err)
	}
	go func() {
		for msg := range events {
			fmt.Println("received", msg.UUID, msg.Metadata.Get("event_type"))
			msg.Ack()
		}
	}()

	publisher, err := httptransport.NewPublisher(httptransport.Config{
		URL: "http://" + server.Addr().String() + "/api/v1/events/{topic}",
	}, nil)
	if err != nil {
		panic(err)
	}
	defer publisher.Close()
	msg := message.NewMessage("0193-ac", []byte(`{"text":"hi"}`))
	msg.Metadata.Set("event_type", "chat_message")
	if err := publisher.Publish("events:chat", msg); err != nil {
		panic(err)
	}
	fmt.Println("acked")
	// Output:
	// received 0193-ac chat_message
	// acked
}
