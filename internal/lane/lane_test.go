package lane

import (
	"hash/fnv"
	"testing"
)

// Of is pinned to FNV-1a so that a change of hash, which moves keys between
// lanes, is a deliberate one.
func TestOf(t *testing.T) {
	for _, key := range []string{"a", "req-123", "room-42", "\xff\x00"} {
		h := fnv.New32a()
		_, _ = h.Write([]byte(key))
		if got, want := Of(key, 64), int(h.Sum32()%64); got != want {
			t.Errorf("Of(%q, 64) = %d, want %d", key, got, want)
		}
	}
	if got := Of("", 64); got != 0 {
		t.Errorf("the empty key: lane %d, want 0", got)
	}
	if got := Of("req-123", 1); got != 0 {
		t.Errorf("one lane: lane %d, want 0", got)
	}
}
