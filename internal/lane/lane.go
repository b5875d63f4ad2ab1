// Package lane maps ordering keys to lanes, alike for every transport that
// delivers per key in order (the ingress and memory's queue, redisstream's
// subscriber), so that messages which share a key always meet in one lane.
package lane

// Of maps key to one of lanes lanes with FNV-1a. The empty key is lane 0:
// messages without a key share it and keep their order.
func Of(key string, lanes int) int {
	if key == "" || lanes <= 1 {
		return 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(lanes))
}
