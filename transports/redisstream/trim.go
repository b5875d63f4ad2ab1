package redisstream

import (
	"cmp"
	"context"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"
)

// trimmer keeps the streams a publisher wrote to near MaxLen without ever
// removing an entry a consumer group has not read and acked. Every
// TrimInterval, for each stream longer than MaxLen, it removes the oldest
// entries beyond MaxLen but none at or after the oldest entry a group still
// needs (its oldest pending or, with none pending, its last delivered one),
// with XTRIM MINID ~. A stream that has had no group for TrimUngroupedAfter
// is trimmed to MaxLen.
//
// Groups vanish with their stream when Redis restarts without its data, and
// their subscribers create them again at 0. So the trimmer remembers the
// groups seen on each stream, and does not trim one that has lost all of
// them, or its own ConsumerGroup, until they are back.
//
// The MaxLen-th newest entry is found with XRANGE, so each entry removed is
// read about once, at most trimScan×trimPages per stream and round.
type trimmer struct {
	client  redis.UniversalClient
	cfg     *Config
	logger  watermill.LoggerAdapter
	mu      sync.Mutex
	streams map[string]*trimmed
	ctx     context.Context // ended by stop
	stop    context.CancelFunc
}

// trimmed is what the trimmer knows of one stream.
type trimmed struct {
	seen      map[string]struct{} // the groups seen on it
	ungrouped time.Time           // when it was first seen without a group, while it has none
	told      bool                // that it is trimmed without a group has been logged
}

func (t *trimmer) track(stream string) {
	t.mu.Lock()
	if _, ok := t.streams[stream]; !ok {
		t.streams[stream] = &trimmed{seen: map[string]struct{}{}}
	}
	t.mu.Unlock()
}

// run trims until stop, and returns at most PublishTimeout after it:
// go-redis notices a context's deadline while it waits for a reply, not its
// cancellation.
func (t *trimmer) run() {
	every(t.ctx, t.cfg.TrimInterval, func() {
		t.mu.Lock()
		streams := slices.Collect(maps.Keys(t.streams))
		t.mu.Unlock()
		for _, s := range streams {
			if t.ctx.Err() != nil {
				return
			}
			ctx, cancel := context.WithTimeout(t.ctx, t.cfg.PublishTimeout)
			if err := t.trimStream(ctx, s); err != nil && t.ctx.Err() == nil {
				t.logger.Debug("Cannot trim stream", watermill.LogFields{"stream": s, "err": err.Error()})
			}
			cancel()
		}
	})
}

func (t *trimmer) trimStream(ctx context.Context, stream string) error {
	// The groups are looked at in every round, so that those that vanish
	// are known.
	pipe := t.client.Pipeline()
	xlen := pipe.XLen(ctx, stream)
	info := pipe.XInfoGroups(ctx, stream)
	// A refused connection set-up fails Exec alone; a missing stream fails
	// XINFO GROUPS alone, and only that is read per command.
	if _, err := pipe.Exec(ctx); err != nil && xlen.Err() == nil && info.Err() == nil {
		return err
	}
	n, err := xlen.Result()
	if err != nil || n == 0 {
		return err // a missing stream has length 0
	}
	groups, err := info.Result()
	if err != nil {
		return err
	}
	if !t.keep(stream, groups) || n <= t.cfg.MaxLen {
		return nil
	}
	if len(groups) == 0 {
		return t.client.XTrimMaxLenApprox(ctx, stream, t.cfg.MaxLen, 0).Err()
	}
	safe := ""
	for _, g := range groups {
		need := g.LastDeliveredID
		if g.Pending > 0 {
			p, err := t.client.XPending(ctx, stream, g.Name).Result()
			if err != nil {
				return err
			}
			// None left if the group acked them since XINFO GROUPS: its
			// last delivered entry bounds it then.
			need = cmp.Or(p.Lower, need)
		}
		if safe == "" || compareIDs(need, safe) < 0 {
			safe = need
		}
	}
	if safe == "" || safe == "0-0" {
		return nil
	}
	over := n - t.cfg.MaxLen
	last, from := "", "-"
	for range trimPages {
		count := min(over, trimScan)
		page, err := t.client.XRangeN(ctx, stream, from, "("+safe, count).Result()
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		last = page[len(page)-1].ID
		over -= int64(len(page))
		if over == 0 || int64(len(page)) < count {
			break
		}
		from = "(" + last
	}
	if last == "" {
		return nil
	}
	return t.client.XTrimMinIDApprox(ctx, stream, nextID(last), 0).Err()
}

// keep records the groups now on stream and reports whether it may be
// trimmed: not while every group seen on it before has vanished, nor while
// our own group has, nor, for a stream without a group, before it has had
// none for TrimUngroupedAfter.
func (t *trimmer) keep(stream string, groups []redis.XInfoGroup) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.streams[stream]
	own := false
	for _, g := range groups {
		st.seen[g.Name] = struct{}{}
		own = own || g.Name == t.cfg.ConsumerGroup
	}
	if len(groups) > 0 {
		st.ungrouped, st.told = time.Time{}, false
		_, had := st.seen[t.cfg.ConsumerGroup]
		return !had || own
	}
	if len(st.seen) > 0 {
		return false
	}
	now := time.Now()
	if st.ungrouped.IsZero() {
		st.ungrouped = now
	}
	if now.Sub(st.ungrouped) < t.cfg.TrimUngroupedAfter {
		return false
	}
	if !st.told {
		st.told = true
		t.logger.Info("Trimming a stream without consumer groups to maxlen", watermill.LogFields{
			"stream": stream, "ungrouped_for": now.Sub(st.ungrouped).String(),
			"meaning": "no consumer group has read the entries removed; consumers that create a group later start after them",
		})
	}
	return true
}

// The trimmer finds what to remove trimScan entries at a time, at most
// trimPages times per stream and round: as many as one XTRIM ~ removes by
// default (100 × stream-node-max-entries).
const (
	trimScan  = 1000
	trimPages = 10
)

// nextID is the smallest stream ID after id.
func nextID(id string) string {
	ms, seq := splitID(id)
	if seq == math.MaxUint64 {
		return strconv.FormatUint(ms+1, 10) + "-0"
	}
	return strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(seq+1, 10)
}

// compareIDs orders stream IDs "ms-seq".
func compareIDs(a, b string) int {
	am, as := splitID(a)
	bm, bs := splitID(b)
	return cmp.Or(cmp.Compare(am, bm), cmp.Compare(as, bs))
}

func splitID(id string) (ms, seq uint64) {
	a, b, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(a, 10, 64)
	seq, _ = strconv.ParseUint(b, 10, 64)
	return ms, seq
}
