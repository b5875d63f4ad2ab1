// Package lane maps ordering keys to lanes, alike for every transport that
// delivers per key in order (the ingress and memory's queue, redisstream's
// and jetstream's subscribers), so that messages which share a key always
// meet in one lane; and its Scheduler delivers the lanes of redisstream's
// and jetstream's subscribers: one head per lane at a time, redelivered
// after a backoff when nacked.
package lane

import "github.com/switchyard-go/switchyard/internal/fnv"

// Of maps key to one of lanes lanes with FNV-1a. The empty key is lane 0:
// messages without a key share it and keep their order.
func Of(key string, lanes int) int {
	if key == "" || lanes <= 1 {
		return 0
	}
	return int(fnv.Add32(fnv.Offset32, key) % uint32(lanes))
}
