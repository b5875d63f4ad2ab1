package redisstream

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"
)

// trimmer keeps the streams a publisher wrote to near MaxLen without ever
// removing an entry a consumer group has not read and acked. Every
// TrimInterval, for each stream longer than MaxLen, it removes the oldest
// entries beyond MaxLen, but none at or after the oldest entry a group still
// needs (its oldest pending entry or, with none pending, its last delivered
// one): XTRIM MINID ~ just past the last entry that may go. A stream without
// groups is trimmed to MaxLen. So a stream whose groups keep up holds about
// MaxLen entries, as with MAXLEN ~, and one with a lagging group grows until
// the group catches up.
//
// Finding that last entry takes an XRANGE over the entries to remove (there
// is no cheaper way to find the MaxLen-th newest entry), so the trimmer
// reads each entry it removes about once, at most trimScan×trimPages per
// stream and round.
type trimmer struct {
	client  redis.UniversalClient
	cfg     *Config
	logger  watermill.LoggerAdapter
	mu      sync.Mutex
	streams map[string]struct{}
	ctx     context.Context // ended by close
	stop    context.CancelFunc
	done    chan struct{}
}

func newTrimmer(client redis.UniversalClient, cfg *Config, logger watermill.LoggerAdapter) *trimmer {
	ctx, stop := context.WithCancel(context.Background())
	t := &trimmer{client: client, cfg: cfg, logger: logger, streams: map[string]struct{}{}, ctx: ctx, stop: stop, done: make(chan struct{})}
	go t.run()
	return t
}

func (t *trimmer) track(stream string) {
	t.mu.Lock()
	if _, ok := t.streams[stream]; !ok {
		t.streams[stream] = struct{}{}
	}
	t.mu.Unlock()
}

// close stops the trimmer and waits for it: at most until the stream being
// trimmed times out (PublishTimeout), as go-redis notices a context's
// deadline while it waits for a reply, but not its cancellation.
func (t *trimmer) close() {
	t.stop()
	<-t.done
}

func (t *trimmer) run() {
	defer close(t.done)
	tick := time.NewTicker(t.cfg.TrimInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-t.ctx.Done():
			return
		}
		t.mu.Lock()
		streams := make([]string, 0, len(t.streams))
		for s := range t.streams {
			streams = append(streams, s)
		}
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
	}
}

func (t *trimmer) trimStream(ctx context.Context, stream string) error {
	n, err := t.client.XLen(ctx, stream).Result()
	if err != nil || n <= t.cfg.MaxLen {
		return err
	}
	groups, err := t.client.XInfoGroups(ctx, stream).Result()
	if err != nil {
		return err
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
			need = p.Lower
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
	switch {
	case am != bm:
		if am < bm {
			return -1
		}
		return 1
	case as != bs:
		if as < bs {
			return -1
		}
		return 1
	}
	return 0
}

func splitID(id string) (ms, seq uint64) {
	i := 0
	for ; i < len(id) && id[i] != '-'; i++ {
		ms = ms*10 + uint64(id[i]-'0')
	}
	for i++; i < len(id); i++ {
		seq = seq*10 + uint64(id[i]-'0')
	}
	return ms, seq
}
