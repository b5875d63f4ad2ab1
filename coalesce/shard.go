package coalesce

import (
	"hash/maphash"
	"sync"
	"unsafe"
)

// shardBits picks a key's shard from the top of its hash: 32 shards, so
// that the lanes of a pipeline adding at once rarely wait on one lock.
const shardBits = 5

const numShards = 1 << shardBits

// shard holds the keys whose hash falls in it.
//
// The table is hand-written, and sharded, because both pay: in same-run
// benchmarks, windows opening while the tables grow (BenchmarkAdd/open) ran
// about 2.8 times faster than in a map[string]int32 under one lock, and
// twice as fast as in one table under one lock; a key (BenchmarkMemory) is
// a quarter smaller than with the map. The other cases were alike.
//
// A key lives in a slot. The table maps it there by open addressing with
// linear probing from the home position given by the low bits of the key's
// hash. Each entry is 4 bytes: 8 other bits of the hash, to skip most slots
// that cannot match, and the slot's index plus one, 0 meaning empty.
// Deleting shifts the entries after it back, so there are no tombstones;
// that and growing hash the keys of the entries they move again. Slots are
// reused through a free list.
//
// Every slot in use is in exactly one queue: the FIFO of window ends of one
// window length. A window opens at the current time and a queue only gets
// windows of its length, so each queue is in deadline order and the next
// window end of a shard is at one of its queues' heads. (Two openings may
// read the clock in one order and take the lock in the other, so a queue can
// be out of order by that much: the later entry then ends when the earlier
// one does, microseconds late.)
type shard[T any] struct {
	shardState[T]
	// Keep shards on separate cache lines (two, for adjacent-line prefetch).
	_ [128 - unsafe.Sizeof(shardState[struct{}]{})%128]byte
}

type shardState[T any] struct {
	mu     sync.Mutex
	table  []uint32
	count  int
	slots  []slot[T]
	free   int32
	queues []queue
}

// slot is one key: 40 bytes when T is a pointer.
type slot[T any] struct {
	key string
	val T
	// deadline is when the key's window ends, in nanoseconds since New.
	deadline int64
	// next is the next slot of the key's queue, or of the free list; -1
	// ends either.
	next int32
	// window is the length of the next window in microseconds, with
	// pendingBit set while val waits to be emitted.
	window uint32
}

type queue struct {
	window     int64 // nanoseconds
	head, tail int32
}

// Table entries: the tag in the top 8 bits, the slot index plus one below.
const (
	indexBits = 24
	indexMask = 1<<indexBits - 1
)

// tag is 8 bits of h that the home position of a table of up to 2^40
// entries, and the shard, do not use.
func tag(h uint64) uint32 { return (uint32(h>>40) & 0xff) << indexBits }

func (s *shard[T]) find(key string, h uint64) int32 {
	if len(s.table) == 0 {
		return -1
	}
	mask := uint32(len(s.table) - 1)
	tg := tag(h)
	for i := uint32(h) & mask; ; i = (i + 1) & mask {
		e := s.table[i]
		if e == 0 {
			return -1
		}
		if e&^indexMask == tg {
			if idx := int32(e&indexMask) - 1; s.slots[idx].key == key {
				return idx
			}
		}
	}
}

// insert takes a slot for key, known to be absent, and returns its index.
func (s *shard[T]) insert(c *Coalescer[T], key string, h uint64) int32 {
	if (s.count+1)*4 > len(s.table)*3 {
		s.grow(c)
	}
	var idx int32
	if s.free >= 0 {
		idx = s.free
		s.free = s.slots[idx].next
	} else {
		s.slots = append(s.slots, slot[T]{})
		idx = int32(len(s.slots) - 1)
	}
	s.put(uint32(h), tag(h)|uint32(idx+1))
	s.count++
	return idx
}

func (s *shard[T]) put(h, e uint32) {
	mask := uint32(len(s.table) - 1)
	i := h & mask
	for s.table[i] != 0 {
		i = (i + 1) & mask
	}
	s.table[i] = e
}

// hash returns the hash of the key of table entry e.
func (s *shard[T]) hash(c *Coalescer[T], e uint32) uint64 {
	return maphash.String(c.seed, s.slots[e&indexMask-1].key)
}

func (s *shard[T]) grow(c *Coalescer[T]) {
	old := s.table
	s.table = make([]uint32, max(8, 2*len(old)))
	for _, e := range old {
		if e != 0 {
			s.put(uint32(s.hash(c, e)), e)
		}
	}
}

// remove forgets the key of slot idx and frees the slot.
func (s *shard[T]) remove(c *Coalescer[T], idx int32) {
	mask := uint32(len(s.table) - 1)
	i := uint32(maphash.String(c.seed, s.slots[idx].key)) & mask
	for s.table[i]&indexMask != uint32(idx+1) {
		i = (i + 1) & mask
	}
	// Shift back every entry after i that may not stay past the hole.
	for j := (i + 1) & mask; s.table[j] != 0; j = (j + 1) & mask {
		home := uint32(s.hash(c, s.table[j])) & mask
		if (j-home)&mask >= (j-i)&mask {
			s.table[i] = s.table[j]
			i = j
		}
	}
	s.table[i] = 0
	s.slots[idx] = slot[T]{next: s.free}
	s.free = idx
	s.count--
	c.live.Add(-1)
}

// enqueue appends slot idx to the queue of window (nanoseconds).
func (s *shard[T]) enqueue(idx int32, window int64) {
	q := s.queue(window)
	s.slots[idx].next = -1
	if q.tail < 0 {
		q.head = idx
	} else {
		s.slots[q.tail].next = idx
	}
	q.tail = idx
}

func (s *shard[T]) queue(window int64) *queue {
	for i := range s.queues {
		if s.queues[i].window == window {
			return &s.queues[i]
		}
	}
	s.queues = append(s.queues, queue{window: window, head: -1, tail: -1})
	return &s.queues[len(s.queues)-1]
}

// expire ends the windows that are due: a pending value joins batch and
// opens the key's next window; a key with nothing pending is forgotten. It
// returns batch and the shard's next window end (idle if none).
func (s *shard[T]) expire(c *Coalescer[T], batch []emission[T]) ([]emission[T], int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := c.now()
	for qi := 0; qi < len(s.queues); qi++ {
		for {
			q := &s.queues[qi] // enqueue may move the queues
			idx := q.head
			if idx < 0 || s.slots[idx].deadline > now {
				break
			}
			sl := &s.slots[idx]
			q.head = sl.next
			if q.head < 0 {
				q.tail = -1
			}
			if sl.window&pendingBit == 0 {
				s.remove(c, idx)
				continue
			}
			batch = append(batch, emission[T]{key: sl.key, val: sl.val})
			var zero T
			sl.val = zero
			sl.window &^= pendingBit
			w := int64(sl.window) * 1000
			sl.deadline = now + w
			s.enqueue(idx, w)
		}
	}
	earliest := int64(idle)
	for qi := len(s.queues) - 1; qi >= 0; qi-- {
		q := s.queues[qi]
		if q.head < 0 {
			last := len(s.queues) - 1
			s.queues[qi] = s.queues[last]
			s.queues = s.queues[:last]
			continue
		}
		earliest = min(earliest, s.slots[q.head].deadline)
	}
	return batch, earliest
}

// drain appends every pending value to batch and forgets every key.
func (s *shard[T]) drain(c *Coalescer[T], batch []emission[T]) []emission[T] {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.queues {
		for idx := q.head; idx >= 0; idx = s.slots[idx].next {
			if sl := &s.slots[idx]; sl.window&pendingBit != 0 {
				batch = append(batch, emission[T]{key: sl.key, val: sl.val})
			}
		}
	}
	c.live.Add(-int64(s.count))
	s.table, s.slots, s.queues, s.count, s.free = nil, nil, nil, 0, -1
	return batch
}
