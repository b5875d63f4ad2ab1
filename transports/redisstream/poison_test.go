package redisstream_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// TestPoisonEntries puts entries that are not messages between good ones.
// watermill-redisstream nacks such an entry and reads it again for ever,
// holding up the stream; ours copies it to the dead-letter stream with the
// reason, acks it, counts it and goes on.
func TestPoisonEntries(t *testing.T) {
	srv := redistest.Start(t)
	const stream, group = "events:poison", "hub"
	cfg := opsConfig(srv.URL(), group)
	pub := opsPublisher(t, cfg)
	sub, reg := opsSubscriber(t, cfg)
	ch := subscribe(t, sub, stream)

	require.NoError(t, pub.Publish(stream, msg("good-1")))
	require.Equal(t, []string{"good-1"}, receiveAck(t, ch, 1, 5*time.Second))

	start := time.Now()
	notMessage := xadd(t, srv, stream, "foo", "bar")
	badMetadata := xadd(t, srv, stream,
		redisstream.FieldWatermillUUID, "0b5a1c7e-poison",
		redisstream.FieldMetadata, "not MessagePack",
		redisstream.FieldPayload, "x")
	require.NoError(t, pub.Publish(stream, msg("good-2")))
	require.Equal(t, []string{"good-2"}, receiveAck(t, ch, 1, time.Second))
	t.Logf("the next good message came %v after the poison", time.Since(start))

	require.Eventually(t, func() bool { return pendingCount(t, srv, stream, group) == 0 },
		2*time.Second, 10*time.Millisecond, "every entry, the bad ones too, is acked")
	require.Equal(t, 2.0, metricValue(t, reg, "switchyard_redis_dead_lettered_total", "stream", stream, "reason", "malformed"))

	dead := stream + ":dead"
	require.Equal(t, 2, xlen(t, srv, dead))
	entries := srv.Do(t, "XRANGE", dead, "-", "+")
	for _, want := range []string{
		redisstream.DeadLetterReasonField, "neither",
		redisstream.DeadLetterIDField, notMessage, badMetadata,
		redisstream.DeadLetterStreamField, stream,
		"foo", "bar", // the entry's own fields are kept
		"not MessagePack",
	} {
		require.Contains(t, entries, want)
	}
	require.Equal(t, 2, strings.Count(entries, redisstream.DeadLetterReasonField))
}

// TestPoisonDeadLetterFails makes the copy to the dead-letter stream fail
// (its key holds a string): the subscription still goes on, the bad entry
// stays pending rather than being dropped, and it is dead-lettered once the
// dead-letter stream can take it.
func TestPoisonDeadLetterFails(t *testing.T) {
	srv := redistest.Start(t)
	const stream, group = "events:poison2", "hub"
	dead := stream + ":dead"
	srv.Do(t, "SET", dead, "not a stream")
	cfg := opsConfig(srv.URL(), group)
	pub := opsPublisher(t, cfg)
	sub, reg := opsSubscriber(t, cfg)
	ch := subscribe(t, sub, stream)

	bad := xadd(t, srv, stream, "foo", "bar")
	require.NoError(t, pub.Publish(stream, msg("good")))
	require.Equal(t, []string{"good"}, receiveAck(t, ch, 1, time.Second))
	require.Eventually(t, func() bool { return pendingCount(t, srv, stream, group) == 1 },
		2*time.Second, 10*time.Millisecond, "the good entry is acked, the bad one stays pending")
	require.Contains(t, srv.Do(t, "XPENDING", stream, group, "-", "+", "10"), bad)
	require.Zero(t, metricValue(t, reg, "switchyard_redis_dead_lettered_total", "stream", stream, "reason", "malformed"))

	srv.Do(t, "DEL", dead)
	require.Eventually(t, func() bool { return pendingCount(t, srv, stream, group) == 0 },
		3*time.Second, 10*time.Millisecond, "dead-lettered on a retry")
	require.Equal(t, 1, xlen(t, srv, dead))
	require.Equal(t, 1.0, metricValue(t, reg, "switchyard_redis_dead_lettered_total", "stream", stream, "reason", "malformed"))
}
