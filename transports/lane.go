package transports

// Lane maps an ordering key to one of lanes lanes with FNV-1a, so messages
// that share a key always meet in the same lane. The empty key is lane 0:
// messages without a key share it and keep their order. Transports that
// deliver per-key in order (memory, redisstream) use it alike.
func Lane(key string, lanes int) int {
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
