//go:build !unix

package benchmarks

import "time"

// processCPU is unknown here: the Redis benchmarks report no cpu-ns/op.
func processCPU() (time.Duration, bool) { return 0, false }
