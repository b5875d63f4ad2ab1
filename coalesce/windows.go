package coalesce

// A key lives in a slot, found through the index map; freed slots are
// reused through a free list, so that opening a window allocates nothing
// once the slots have grown.
//
// Every slot in use is in exactly one queue: the FIFO of window ends of one
// window length. A window opens at the current time and a queue only gets
// windows of its length, so each queue is in deadline order and the next
// window end is at one of the queues' heads.

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

// insert takes a slot for key, known to be absent, and returns its index.
func (c *Coalescer[T]) insert(key string) int32 {
	idx := c.free
	if idx >= 0 {
		c.free = c.slots[idx].next
	} else {
		c.slots = append(c.slots, slot[T]{})
		idx = int32(len(c.slots) - 1)
	}
	c.index[key] = idx
	return idx
}

// remove forgets the key of slot idx and frees the slot.
func (c *Coalescer[T]) remove(idx int32) {
	delete(c.index, c.slots[idx].key)
	c.slots[idx] = slot[T]{next: c.free}
	c.free = idx
}

// enqueue appends slot idx to the queue of window (nanoseconds).
func (c *Coalescer[T]) enqueue(idx int32, window int64) {
	q := c.queue(window)
	c.slots[idx].next = -1
	if q.tail < 0 {
		q.head = idx
	} else {
		c.slots[q.tail].next = idx
	}
	q.tail = idx
}

func (c *Coalescer[T]) queue(window int64) *queue {
	for i := range c.queues {
		if c.queues[i].window == window {
			return &c.queues[i]
		}
	}
	c.queues = append(c.queues, queue{window: window, head: -1, tail: -1})
	return &c.queues[len(c.queues)-1]
}

// expire ends the windows that are due: a pending value joins batch and
// opens the key's next window; a key with nothing pending is forgotten. It
// returns batch and the next window end (idle if none).
func (c *Coalescer[T]) expire(batch []emission[T]) ([]emission[T], int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for qi := 0; qi < len(c.queues); qi++ {
		for {
			q := &c.queues[qi] // enqueue may move the queues
			idx := q.head
			if idx < 0 || c.slots[idx].deadline > now {
				break
			}
			sl := &c.slots[idx]
			q.head = sl.next
			if q.head < 0 {
				q.tail = -1
			}
			if sl.window&pendingBit == 0 {
				c.remove(idx)
				continue
			}
			batch = append(batch, emission[T]{key: sl.key, val: sl.val})
			var zero T
			sl.val = zero
			sl.window &^= pendingBit
			w := int64(sl.window) * 1000
			sl.deadline = now + w
			c.enqueue(idx, w)
		}
	}
	earliest := int64(idle)
	for qi := len(c.queues) - 1; qi >= 0; qi-- {
		q := c.queues[qi]
		if q.head < 0 {
			last := len(c.queues) - 1
			c.queues[qi] = c.queues[last]
			c.queues = c.queues[:last]
			continue
		}
		earliest = min(earliest, c.slots[q.head].deadline)
	}
	return batch, earliest
}

// drain appends every pending value to batch, forgets every key and makes
// Add return Closed from then on.
func (c *Coalescer[T]) drain(batch []emission[T]) []emission[T] {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, q := range c.queues {
		for idx := q.head; idx >= 0; idx = c.slots[idx].next {
			if sl := &c.slots[idx]; sl.window&pendingBit != 0 {
				batch = append(batch, emission[T]{key: sl.key, val: sl.val})
			}
		}
	}
	c.closed = true
	c.index, c.slots, c.queues, c.free = nil, nil, nil, -1
	return batch
}
