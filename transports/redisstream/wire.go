package redisstream

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/internal/delivery"
)

// Format is how a message is laid out in a stream entry.
type Format string

const (
	// FormatWatermill is watermill-redisstream's layout: fields
	// "_watermill_message_uuid", "metadata" (a MessagePack map) and
	// "payload". Either side reads what the other writes.
	FormatWatermill Format = "watermill"
	// FormatFlat is for consumers in other languages: plain fields "id",
	// "event_type", "event_key", "published_at", "payload", and every other
	// metadata key as "meta.<key>". docs/wire-format.md describes both.
	FormatFlat Format = "flat"
)

// Field names of the two formats.
const (
	FieldWatermillUUID = "_watermill_message_uuid"
	FieldMetadata      = "metadata"
	FieldPayload       = "payload"
	FieldID            = "id"
	FieldEventType     = "event_type"
	FieldEventKey      = "event_key"
	FieldPublishedAt   = "published_at"
	FlatMetaPrefix     = "meta."
)

// ErrMalformed wraps the reason an entry could not be read as a message.
var ErrMalformed = errors.New("redisstream: malformed entry")

// encoder lays messages out as XADD field/value lists. The lists of one
// Publish share one backing array, and their MessagePack one buffer.
type encoder struct {
	vals []any
	md   []byte
}

// newEncoder returns an encoder sized for n messages like m.
func newEncoder(f Format, n int, m *message.Message) encoder {
	if f == FormatFlat {
		return encoder{vals: make([]any, 0, n*(4+2*len(m.Metadata)))}
	}
	e := encoder{vals: make([]any, 0, 6*n)}
	if len(m.Metadata) > 0 {
		e.md = make([]byte, 0, n*(8+48*len(m.Metadata)))
	}
	return e
}

// encode returns m's field/value list. Earlier lists stay valid when the
// shared arrays grow: append leaves the old array as it was.
func (e *encoder) encode(f Format, m *message.Message) ([]any, error) {
	start := len(e.vals)
	switch f {
	case FormatFlat:
		e.vals = append(e.vals, FieldID, m.UUID)
		for k, v := range m.Metadata {
			switch k {
			case FieldEventType, FieldEventKey, FieldPublishedAt:
				e.vals = append(e.vals, k, v)
			default:
				e.vals = append(e.vals, FlatMetaPrefix+k, v)
			}
		}
		e.vals = append(e.vals, FieldPayload, []byte(m.Payload))
	default:
		// As watermill-redisstream: only a non-empty value is refused, so
		// whatever its publisher writes (and we read) we can write again.
		if m.Metadata.Get(FieldWatermillUUID) != "" {
			return nil, fmt.Errorf("redisstream: metadata key %q is reserved for the message UUID", FieldWatermillUUID)
		}
		var md []byte
		if len(m.Metadata) > 0 {
			at := len(e.md)
			e.md = appendMsgpackMap(e.md, m.Metadata)
			md = e.md[at:len(e.md):len(e.md)]
		}
		e.vals = append(e.vals, FieldWatermillUUID, m.UUID, FieldMetadata, md, FieldPayload, []byte(m.Payload))
	}
	return e.vals[start:len(e.vals):len(e.vals)], nil
}

// entry is a message as read from a stream entry; each delivery is built
// from it.
type entry struct {
	uuid    string
	payload []byte
	meta    []string // key, value, key, value…; a later pair wins

	id     string
	values map[string]any   // as read, for a dead-letter copy
	first  delivery.Context // the first delivery's context, allocated with the entry
}

// get returns the value of metadata key, as the message's Metadata has it.
func (e *entry) get(key string) string {
	for i := len(e.meta) - 2; i >= 0; i -= 2 {
		if e.meta[i] == key {
			return e.meta[i+1]
		}
	}
	return ""
}

func (e *entry) message() *message.Message {
	m := message.NewMessage(e.uuid, e.payload)
	for i := 0; i+1 < len(e.meta); i += 2 {
		m.Metadata[e.meta[i]] = e.meta[i+1]
	}
	return m
}

// decodeEntry reads an entry in either format into e. The metadata keys
// and values share the strings of values.
func decodeEntry(e *entry, values map[string]any) error {
	idField := FieldWatermillUUID
	if _, ok := values[idField]; !ok {
		idField = FieldID
		if _, ok := values[idField]; !ok {
			return fmt.Errorf("%w: neither %q nor %q field", ErrMalformed, FieldWatermillUUID, FieldID)
		}
	}
	uuid, ok := values[idField].(string)
	if !ok || uuid == "" {
		return fmt.Errorf("%w: empty %s", ErrMalformed, idField)
	}
	payload, _ := values[FieldPayload].(string)
	e.uuid, e.payload = uuid, []byte(payload)
	if idField == FieldWatermillUUID {
		if md, _ := values[FieldMetadata].(string); md != "" {
			var err error
			if e.meta, err = appendMsgpackPairs(e.meta[:0], md); err != nil {
				return fmt.Errorf("%w: %w", ErrMalformed, err)
			}
		}
		return nil
	}
	e.meta = slices.Grow(e.meta[:0], 2*len(values))
	for k, v := range values {
		s, _ := v.(string)
		switch {
		case k == FieldEventType || k == FieldEventKey || k == FieldPublishedAt:
			e.meta = append(e.meta, k, s)
		case strings.HasPrefix(k, FlatMetaPrefix):
			e.meta = append(e.meta, k[len(FlatMetaPrefix):], s)
		}
	}
	return nil
}
