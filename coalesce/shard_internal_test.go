package coalesce

import (
	"hash/maphash"
	"math/rand/v2"
	"strconv"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The table against a map, through random inserts and removals that keep
// it between nearly empty and its maximum load, where linear probing makes
// long clusters: every key stays findable, none is found after removal, and
// every entry is reachable from its home position.
func TestTableAgainstAMap(t *testing.T) {
	c, err := New(Config{MaxKeys: 1 << 20}, func(string, int) {})
	require.NoError(t, err)
	s := &c.shards[0]
	model := map[string]int32{}
	rng := rand.New(rand.NewPCG(1, 2))
	hash := func(k string) uint64 { return maphash.String(c.seed, k) }
	for op := range 60000 {
		k := "k" + strconv.Itoa(rng.IntN(3000))
		if idx, ok := model[k]; ok && rng.IntN(2) == 0 {
			c.live.Add(1) // remove takes one off
			s.remove(c, idx)
			delete(model, k)
		} else if !ok {
			idx := s.insert(c, k, hash(k))
			s.slots[idx].key = k
			model[k] = idx
		}
		require.Equal(t, len(model), s.count)
		if op%2000 == 0 {
			checkTable(t, s, hash)
			for k, idx := range model {
				require.Equal(t, idx, s.find(k, hash(k)), "key %s", k)
			}
			for i := range 3000 {
				k := "k" + strconv.Itoa(i)
				if _, ok := model[k]; !ok {
					require.EqualValues(t, -1, s.find(k, hash(k)), "removed key %s found", k)
				}
			}
		}
	}
}

func checkTable[T any](t *testing.T, s *shard[T], hash func(string) uint64) {
	t.Helper()
	mask := uint32(len(s.table) - 1)
	n := 0
	for i, e := range s.table {
		if e == 0 {
			continue
		}
		n++
		idx := int32(e&indexMask) - 1
		h := hash(s.slots[idx].key)
		require.Equal(t, tag(h), e&^indexMask, "entry %d: tag of its key", i)
		for j := uint32(h) & mask; j != uint32(i); j = (j + 1) & mask {
			require.NotZero(t, s.table[j], "entry %d unreachable from its home %d", i, uint32(h)&mask)
		}
	}
	require.Equal(t, s.count, n)
	require.LessOrEqual(t, 4*s.count, 3*len(s.table), "load at most 3/4")
}

// The memory a key costs is its slot, an entry of the table and nothing
// else: these sizes are what docs/coalescing.md's bytes per key rest on.
func TestSizes(t *testing.T) {
	assert.EqualValues(t, 40, unsafe.Sizeof(slot[*int]{}), "slot with a pointer value")
	assert.EqualValues(t, 128, unsafe.Sizeof(shard[*int]{}), "a shard fills two cache lines")
}
