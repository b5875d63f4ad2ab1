package redisstream

import (
	"context"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"
)

// trimmer keeps the streams a publisher wrote to near MaxLen without ever
// removing an entry a consumer group has not read and acked: every
// TrimInterval, for each stream longer than MaxLen, it trims (XTRIM MINID ~)
// below the oldest entry any group still needs, its oldest pending entry or,
// with none pending, its last delivered one. A stream without groups is
// trimmed to MaxLen.
type trimmer struct {
	client  redis.UniversalClient
	cfg     *Config
	logger  watermill.LoggerAdapter
	mu      sync.Mutex
	streams map[string]struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newTrimmer(client redis.UniversalClient, cfg *Config, logger watermill.LoggerAdapter) *trimmer {
	t := &trimmer{client: client, cfg: cfg, logger: logger, streams: map[string]struct{}{}, stop: make(chan struct{}), done: make(chan struct{})}
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

func (t *trimmer) close() {
	close(t.stop)
	<-t.done
}

func (t *trimmer) run() {
	defer close(t.done)
	tick := time.NewTicker(t.cfg.TrimInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-t.stop:
			return
		}
		t.mu.Lock()
		streams := make([]string, 0, len(t.streams))
		for s := range t.streams {
			streams = append(streams, s)
		}
		t.mu.Unlock()
		for _, s := range streams {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := t.trimStream(ctx, s); err != nil {
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
	return t.client.XTrimMinIDApprox(ctx, stream, safe, 0).Err()
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
