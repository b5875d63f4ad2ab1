// Package coalesce is a per-key throttle with a leading and a trailing edge:
// the first event of a window goes at once and the latest state goes at the
// window's end, so a storm of typing events becomes one or two. It is usable
// without Watermill; its middleware adapter plugs it into a pipeline.
package coalesce
