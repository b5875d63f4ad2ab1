// Package fnv is FNV-1a over strings, continued from any state so that a
// prefix (a salt) is hashed once, and without allocating: hash/fnv needs a
// []byte and a hash.Hash. The lane of a key and the rollout bucket of a
// key both rest on it, and a change to it moves keys: tests pin its values.
package fnv

// Initial states.
const (
	Offset32 uint32 = 2166136261
	Offset64 uint64 = 14695981039346656037
)

const (
	prime32 = 16777619
	prime64 = 1099511628211
)

// Add32 continues the 32-bit FNV-1a hash h over s.
func Add32(h uint32, s string) uint32 {
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= prime32
	}
	return h
}

// Add64 continues the 64-bit FNV-1a hash h over s.
func Add64(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime64
	}
	return h
}
