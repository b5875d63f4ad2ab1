package middleware

import (
	"math"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/switchyard-go/switchyard/internal/monotime"
)

// cooldowns holds keys on the fallback until their time is up, in an LRU
// of CooldownKeys keys: past it the key held longest ago goes first.
// golang-lru's expirable cache would expire keys by itself, but its TTL is
// fixed when it is made while Cooldown reloads, and it starts a goroutine
// that nothing stops (v2.0.7); here a key's end (monotime) is its value
// instead, and an ended key stays until the LRU pushes it out.
type cooldowns struct {
	keys *lru.Cache[string, time.Duration]
	// last is the end of the latest hold, or noHold once it has passed:
	// then no key is held, and holds answers from it alone.
	last atomic.Int64
}

const noHold = math.MinInt64

func newCooldowns(maxKeys int) *cooldowns {
	keys, _ := lru.New[string, time.Duration](maxKeys) // errs only on a size <= 0
	c := &cooldowns{keys: keys}
	c.last.Store(noHold)
	return c
}

func (c *cooldowns) holds(key string) bool {
	last := c.last.Load()
	if last == noHold {
		return false
	}
	now := monotime.Now()
	if int64(now) >= last {
		c.last.CompareAndSwap(last, noHold) // unless a hold moved it on
		return false
	}
	until, ok := c.keys.Peek(key)
	return ok && now < until
}

func (c *cooldowns) hold(key string, cooldown time.Duration) {
	until := monotime.Now() + cooldown
	c.keys.Add(key, until)
	for {
		last := c.last.Load()
		if last >= int64(until) || c.last.CompareAndSwap(last, int64(until)) {
			return
		}
	}
}

func (c *cooldowns) held() int {
	now := monotime.Now()
	if int64(now) >= c.last.Load() {
		return 0
	}
	n := 0
	for _, until := range c.keys.Values() {
		if now < until {
			n++
		}
	}
	return n
}
