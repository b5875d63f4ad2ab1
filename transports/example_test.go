package transports_test

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-go/switchyard/transports"
)

// stdoutPublisher is a toy transport: it prints what it is given.
type stdoutPublisher struct{ prefix string }

func (p stdoutPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		fmt.Printf("%s %s: %s\n", p.prefix, topic, m.Payload)
	}
	return nil
}

func (stdoutPublisher) Close() error { return nil }

type stdoutConfig struct {
	Prefix string `koanf:"prefix"`
}

// A plugin registers a factory under a type name; the bus looks the name up
// from the `type` key of a transport's configuration section. A test uses its
// own Registry, never the process-wide one.
func Example() {
	r := transports.NewRegistry()
	r.Register("stdout", func(s transports.Settings) (transports.Transport, error) {
		var cfg stdoutConfig
		if err := s.Decode(&cfg); err != nil {
			return transports.Transport{}, err
		}
		return transports.Transport{Publisher: stdoutPublisher{prefix: cfg.Prefix}}, nil
	})

	factory, err := r.Lookup("stdout")
	if err != nil {
		panic(err)
	}
	tr, err := factory(transports.Settings{
		Name: "console",
		// The bus decodes the section with koanf; here a stand-in fills it.
		Decode: func(target any) error {
			*target.(*stdoutConfig) = stdoutConfig{Prefix: "[console]"}
			return nil
		},
		Logger:     watermill.NopLogger{},
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		panic(err)
	}
	_ = tr.Publisher.Publish("events:chat", message.NewMessage("1", []byte("hello")))

	_, err = r.Lookup("carrier-pigeon")
	fmt.Println(err)
	// Output:
	// [console] events:chat: hello
	// transports: unknown transport type "carrier-pigeon" (known: stdout; is its package imported? transports/all imports every built-in one)
}
