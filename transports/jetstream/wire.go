package jetstream

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"
)

// UUIDHeader carries the message's UUID, under the name watermill-nats
// uses (its NATSMarshaler), so that each side reads what the other writes.
const UUIDHeader = "_watermill_message_uuid"

// Headers that NATS and JetStream set for themselves: never metadata.
var reservedHeaders = map[string]bool{
	UUIDHeader:                  true,
	nats.MsgIdHdr:               true,
	nats.ExpectedLastMsgIdHdr:   true,
	nats.ExpectedStreamHdr:      true,
	nats.ExpectedLastSubjSeqHdr: true,
	nats.ExpectedLastSeqHdr:     true,
}

// ErrMetadata is returned, wrapped, by Publish for a message whose metadata
// a NATS header cannot carry unchanged.
var ErrMetadata = errors.New("jetstream: metadata cannot be carried in a NATS header")

// marshal builds the NATS message of msg on subject: the payload as the
// data, the UUID in UUIDHeader and in Nats-Msg-Id (so that the stream drops
// a retried publish within its duplicate window), each metadata entry as a
// header of its own, as watermill-nats writes them.
func marshal(subject string, msg *message.Message) (*nats.Msg, error) {
	n := len(msg.Metadata) + 2
	h := make(nats.Header, n)
	// Every header holds one value: one array holds them all, each
	// header a slice of it whose capacity ends at its value, so an
	// append by nats.go copies instead of writing over the next one.
	vals := make([]string, 0, n)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	for k, v := range msg.Metadata {
		if err := checkHeader(k, v); err != nil {
			return nil, err
		}
		set(k, v)
	}
	set(UUIDHeader, msg.UUID)
	// checkHeader would refuse the key, which is NATS's own: only the
	// value needs checking.
	if msg.UUID != "" && headerValueKept(msg.UUID) {
		set(nats.MsgIdHdr, msg.UUID)
	}
	return &nats.Msg{Subject: subject, Data: msg.Payload, Header: h}, nil
}

// checkHeader refuses what NATS would change or refuse: a key that is
// reserved, empty or holds a ':', white space or a control character, and
// a value with a line break or white space at either end (nats.go trims
// it).
func checkHeader(k, v string) error {
	if reservedHeaders[k] || strings.HasPrefix(k, "Nats-") {
		return fmt.Errorf("%w: key %q is reserved for NATS", ErrMetadata, k)
	}
	if k == "" {
		return fmt.Errorf("%w: empty key", ErrMetadata)
	}
	for i := 0; i < len(k); i++ {
		if b := k[i]; b <= ' ' || b == ':' || b >= 0x7f {
			return fmt.Errorf("%w: key %q holds a ':', white space or a non-ASCII character", ErrMetadata, k)
		}
	}
	if !headerValueKept(v) {
		return fmt.Errorf("%w: the value of %q has a line break or white space at an end", ErrMetadata, k)
	}
	return nil
}

// headerValueKept reports whether nats.go sends v unchanged: no CR or LF,
// no ASCII white space at either end (textproto.TrimString's).
func headerValueKept(v string) bool {
	if v == "" {
		return true
	}
	if isSpace(v[0]) || isSpace(v[len(v)-1]) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' {
			return false
		}
	}
	return true
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// unmarshal reads a delivered message as watermill-nats does. A message
// without UUIDHeader (a plain NATS publish) takes its Nats-Msg-Id, or else
// stream:sequence, so that its deliveries share one UUID for dedupe.
func unmarshal(m js.Msg) (*message.Message, error) {
	h := m.Headers()
	md := make(message.Metadata, len(h))
	for k, v := range h {
		if reservedHeaders[k] || strings.HasPrefix(k, "Nats-") {
			continue
		}
		if len(v) != 1 {
			return nil, fmt.Errorf("header %q has %d values; metadata takes one", k, len(v))
		}
		md[k] = v[0]
	}
	id := h.Get(UUIDHeader)
	if id == "" {
		id = h.Get(nats.MsgIdHdr)
	}
	if id == "" {
		meta, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("no %s header, and no JetStream metadata: %w", UUIDHeader, err)
		}
		id = meta.Stream + ":" + strconv.FormatUint(meta.Sequence.Stream, 10)
	}
	out := message.NewMessage(id, m.Data())
	out.Metadata = md
	return out, nil
}
