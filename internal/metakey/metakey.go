// Package metakey names, once, the metadata keys that the bus writes and
// its stages and transports read by default. Users see them as
// bus.MetaEventKey, bus.MetaEventType and bus.MetaTransport; middleware,
// coalesce and the transports, which must not import bus, read them here.
package metakey

const (
	// EventKey is the ordering key: events that share it keep their order
	// and take the same route.
	EventKey = "event_key"
	// EventType is the event's type, e.g. "chat_message" or "typing".
	EventType = "event_type"
	// Transport is the configured transport name the route stage chose.
	Transport = "transport"
)
