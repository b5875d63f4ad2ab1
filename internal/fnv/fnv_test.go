package fnv

import (
	"hash/fnv"
	"testing"
)

// Add32 and Add64 are the standard library's FNV-1a, also when continued.
func TestMatchesHashFNV(t *testing.T) {
	for _, s := range []string{"", "a", "req-123", "\xff\x00é"} {
		h32, h64 := fnv.New32a(), fnv.New64a()
		_, _ = h32.Write([]byte("salt" + s))
		_, _ = h64.Write([]byte("salt" + s))
		if got, want := Add32(Add32(Offset32, "salt"), s), h32.Sum32(); got != want {
			t.Errorf("Add32(%q) = %#x, want %#x", s, got, want)
		}
		if got, want := Add64(Add64(Offset64, "salt"), s), h64.Sum64(); got != want {
			t.Errorf("Add64(%q) = %#x, want %#x", s, got, want)
		}
	}
}
