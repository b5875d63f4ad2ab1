// Package bus is switchyard's embedded event bus: Publish hands events to a
// bounded, per-key ordered in-process ingress; a Watermill Router handler
// takes them through the pipeline middleware (the user's, then coalescing,
// routing and fallback) and publishes each on the transport its route
// names; Handle consumes the configured inbound transports.
//
// A *Bus is itself a Watermill Pub/Sub (message.Publisher and
// message.Subscriber), so Watermill code such as CQRS buses and forwarders can
// use it unchanged.
//
//	cfg, err := bus.LoadConfig(bus.FromFile("switchyard.yaml"), bus.FromEnv())
//	b, err := bus.New(cfg, bus.WithLogger(logger), bus.WithRegisterer(reg))
//	b.Handle("gateway", "events:chat", func(m *message.Message) error { … })
//	go b.Run(ctx)
//	<-b.Running()
//	err = b.Publish("events:chat", bus.NewMessage("typing", "req-123", payload))
//	…
//	err = b.Close() // drains what Publish accepted, within bus.close_timeout
//
// The bus finds transports by type name in a registry
// (github.com/switchyard-go/switchyard/transports), so a program links only
// the transports it imports: transports/memory for the default
// configuration, transports/all for every built-in one.
//
// Delivery is at least once. Events that share a key (NewMessage's key, the
// event_key metadata) keep their order from Publish to the transport; events
// without a key share one lane and keep their publish order too.
package bus
