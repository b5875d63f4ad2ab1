package bus

import (
	"errors"
	"fmt"
)

// Sentinel errors, wrapped with %w and checked with errors.Is.
var (
	// ErrClosed: the bus is closed (or closing) and accepts nothing more.
	ErrClosed = errors.New("bus: closed")
	// ErrQueueFull: the ingress had no room (on_full: reject), or none came
	// before the message context's deadline (on_full: block).
	ErrQueueFull = errors.New("bus: queue full")
	// ErrCloseTimeout: Close could not hand every accepted message on within
	// bus.close_timeout; the error says how many were left.
	ErrCloseTimeout = errors.New("bus: close timeout")
	// ErrDeadLettered: a message could not be published after its retries and
	// went to the dead-letter destination; the transport's error is wrapped too.
	ErrDeadLettered = errors.New("bus: dead-lettered")
	// ErrUnknownTransport: a route named a transport that is not configured.
	ErrUnknownTransport = errors.New("bus: unknown transport")
	// ErrRunning: Run was called twice, or Use after Run.
	ErrRunning = errors.New("bus: already running")
	// ErrNoInbound: Handle or Subscribe on a bus that consumes from no
	// transport (consume.from is empty, or no routed transport subscribes).
	ErrNoInbound = errors.New("bus: no inbound transport")
)

var errNoInbound = fmt.Errorf("%w: set consume.from to transports that can subscribe", ErrNoInbound)
