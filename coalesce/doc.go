// Package coalesce is a per-key throttle with a leading and a trailing edge:
// the first event of a window goes at once and the latest state goes at the
// window's end, so a storm of typing events becomes one or two. It is not a
// debounce: a key that keeps changing emits once per window for as long as it
// changes.
//
// The engine, Coalescer, is usable without Watermill: Add tells the caller
// whether to send a value now (the leading edge, or a pass-through), and the
// emit function given to New gets each window's trailing value. It runs no
// timer per key: one goroutine, started by the first window, ends every
// window, and a key that exists costs Add no allocation. MaxKeys bounds the
// keys tracked, and so the memory; past it values pass through uncoalesced.
//
// Middleware plugs the engine into a Watermill handler: coalesced-away
// messages are acked, and each window's trailing message is republished into
// the pipeline (a bus's ingress), so that it is retried and dead-lettered like
// any other. See docs/coalescing.md.
package coalesce
