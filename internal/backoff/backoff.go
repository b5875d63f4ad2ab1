// Package backoff computes the exponential waits between retries that the
// ingress, the transports and the bus share.
package backoff

import "time"

// Exp returns base doubled n times, at most limit. A negative n counts as
// zero. A doubling that would overflow gives limit, so any n is safe.
func Exp(base, limit time.Duration, n int) time.Duration {
	n = max(n, 0)
	if n >= 63 || base > limit>>n {
		return limit
	}
	return base << n
}
