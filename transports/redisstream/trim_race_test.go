package redisstream_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// beforeXPending runs f before each XPENDING the client sends.
type beforeXPending func(cmd redis.Cmder)

func (beforeXPending) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h beforeXPending) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "xpending" {
			h(cmd)
		}
		return next(ctx, cmd)
	}
}
func (beforeXPending) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestTrimGuardGroupAcksDuringRound: a lagging group that acks its last
// pending entries between the trimmer's XINFO GROUPS and its XPENDING
// still bounds the trim by what it has read: the entries it has not read
// yet stay, whatever the other groups have acked.
func TestTrimGuardGroupAcksDuringRound(t *testing.T) {
	srv := redistest.Start(t)
	const stream, maxLen, total = "events:trim-acking", 100, 1000
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	ctx := context.Background()
	// "a" sorts before "b": XINFO GROUPS lists it first.
	require.NoError(t, admin.XGroupCreateMkStream(ctx, stream, "a", "0").Err())
	require.NoError(t, admin.XGroupCreate(ctx, stream, "b", "0").Err())

	var armed atomic.Bool
	fired := make(chan struct{})
	var aIDs []string
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	client.AddHook(beforeXPending(func(cmd redis.Cmder) {
		// "a" acks its pending entries just before the trimmer asks.
		if len(cmd.Args()) == 3 && cmd.Args()[2] == "a" && armed.CompareAndSwap(true, false) {
			if err := admin.XAck(ctx, stream, "a", aIDs...).Err(); err != nil {
				panic(err)
			}
			close(fired)
		}
	}))
	t.Cleanup(func() { _ = client.Close() })
	cfg := opsConfig(srv.URL(), "")
	cfg.MaxLen = maxLen
	pub, err := redisstream.NewPublisher(cfg, client, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })

	publishN(t, pub, stream, "m", total)
	// "a" has read 100 entries and acked none: 900 unread.
	res, err := admin.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "a", Consumer: "x", Streams: []string{stream, ">"}, Count: 100}).Result()
	require.NoError(t, err)
	for _, m := range res[0].Messages {
		aIDs = append(aIDs, m.ID)
	}
	// "b" has read and acked everything.
	res, err = admin.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "b", Consumer: "x", Streams: []string{stream, ">"}, Count: total}).Result()
	require.NoError(t, err)
	var bIDs []string
	for _, m := range res[0].Messages {
		bIDs = append(bIDs, m.ID)
	}
	require.Len(t, bIDs, total)
	require.NoError(t, admin.XAck(ctx, stream, "b", bIDs...).Err())

	armed.Store(true)
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("the trimmer never asked for a's pending entries")
	}
	trimRound(t, srv, pub, maxLen)
	require.GreaterOrEqual(t, xlen(t, srv, stream), total-len(aIDs), "a's 900 unread entries are kept")
	out := srv.Do(t, "XREADGROUP", "GROUP", "a", "x", "COUNT", "1", "STREAMS", stream, ">")
	require.Contains(t, out, "m100", "a reads on where it was")
}
