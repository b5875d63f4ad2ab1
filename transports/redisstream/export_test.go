package redisstream

import "github.com/ThreeDotsLabs/watermill/message"

// SendThroughFlushers makes every publish of p go through a flusher, as on
// a client that does not end calls at their context's deadline, so that
// tests reach that path with the transport's own client.
func SendThroughFlushers(p *Publisher) { p.direct = false }

// encode returns the XADD field/value list of m.
func encode(f Format, m *message.Message) ([]any, error) {
	var e encoder
	return e.encode(f, m)
}

// decode reads an entry in either format, whatever the publisher's setting.
func decode(values map[string]any) (*message.Message, error) {
	var e entry
	if err := decodeEntry(&e, values); err != nil {
		return nil, err
	}
	return e.message(), nil
}
