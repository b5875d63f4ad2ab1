package jetstream

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

// BenchmarkMarshal is the cost of one publish's NATS message, for an
// event as the bus makes it.
//
//	go test -run '^$' -bench '^BenchmarkMarshal$' -count 6 ./transports/jetstream/
func BenchmarkMarshal(b *testing.B) {
	m := message.NewMessage("0b7c6a52-4a1f-4c1e-9d3e-2f0b9c1d7e55", []byte(`{"text":"hello, world"}`))
	m.Metadata.Set("event_type", "chat_message")
	m.Metadata.Set("event_key", "conversation-42")
	m.Metadata.Set("published_at", "2026-12-06T05:00:00.123456789Z")
	m.Metadata.Set("transport", "nats")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := marshal("events", m); err != nil {
			b.Fatal(err)
		}
	}
}
