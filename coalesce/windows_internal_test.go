package coalesce

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// A key costs its slot and its entry in the index map; BenchmarkMemory
// measures both, which docs/coalescing.md's bytes per key rest on.
func TestSizes(t *testing.T) {
	assert.EqualValues(t, 40, unsafe.Sizeof(slot[*int]{}), "slot with a pointer value")
}
