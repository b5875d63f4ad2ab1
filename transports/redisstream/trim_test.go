package redisstream_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// publishN publishes n messages "<prefix><i>" in batches of 100.
func publishN(t *testing.T, pub message.Publisher, stream, prefix string, n int) {
	t.Helper()
	all := payloads(prefix, n)
	for len(all) > 0 {
		batch := all[:min(100, len(all))]
		all = all[len(batch):]
		msgs := make([]*message.Message, len(batch))
		for i, p := range batch {
			msgs[i] = msg(p)
		}
		require.NoError(t, pub.Publish(stream, msgs...))
	}
}

// trimRound returns once the publisher's trimmer has run a whole round that
// started after the call: it grows a canary stream without groups past
// maxlen and waits until it is trimmed, three times. (Each round trims each
// stream once. The first trim may come from a round that started before the
// call; the second, from one that started after it but may not have reached
// the other streams yet; the third shows that that one has ended.)
func trimRound(t *testing.T, srv *redistest.Server, pub message.Publisher, maxLen int) {
	t.Helper()
	const canary = "events:canary"
	for range 3 {
		publishN(t, pub, canary, "c", 2*maxLen+1)
		require.Eventually(t, func() bool { return xlen(t, srv, canary) <= 2*maxLen },
			5*time.Second, 5*time.Millisecond, "the trimmer trims a stream without groups")
	}
}

// TestTrimGuard: watermill-redisstream trims with MAXLEN ~ on every XADD,
// so entries a lagging group has not read are lost. Ours never trims an
// entry a group has not read and acked: the stream grows past maxlen while
// a group lags (reported as event_queue_depth), and comes back near maxlen
// once every group has caught up.
func TestTrimGuard(t *testing.T) {
	srv := redistest.Start(t)
	const stream, maxLen, total = "events:trim", 100, 1000
	cfg := opsConfig(srv.URL(), "hub")
	cfg.MaxLen = maxLen
	cfg.ReadCount = 10 // the stalled subscriber holds 20 to 29 pending entries
	pub := opsPublisher(t, cfg)
	sub, reg := opsSubscriber(t, cfg)
	ch := subscribe(t, sub, stream)
	// A second group that reads nothing at all.
	srv.Do(t, "XGROUP", "CREATE", stream, "audit", "0")

	// hub stalls: its handler takes the first message and does not ack it,
	// so the subscription reads 2×read_count entries (and what its last
	// read brought beyond that) and waits.
	publishN(t, pub, stream, "m", total)
	first := receive(t, ch, 5*time.Second)
	require.Eventually(t, func() bool { return pendingCount(t, srv, stream, "hub") >= 2*int(cfg.ReadCount) },
		5*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		return metricValue(t, reg, "event_queue_depth", "stream", stream) == total
	}, 5*time.Second, 5*time.Millisecond, "lag 980 + pending 20 reported")
	trimRound(t, srv, pub, maxLen)
	require.Equal(t, total, xlen(t, srv, stream), "nothing unread or pending trimmed")
	require.Less(t, pendingCount(t, srv, stream, "hub"), 3*int(cfg.ReadCount), "the subscription stopped reading")

	// hub catches up: every entry arrives, in order, none was lost.
	first.Ack()
	got := append([]string{string(first.Payload)}, receiveAck(t, ch, total-1, 10*time.Second)...)
	require.Equal(t, payloads("m", total), got)
	require.Eventually(t, func() bool {
		return pendingCount(t, srv, stream, "hub") == 0 &&
			metricValue(t, reg, "event_queue_depth", "stream", stream) == 0
	}, 5*time.Second, 5*time.Millisecond, "hub's depth falls to 0")

	// audit has still read nothing.
	trimRound(t, srv, pub, maxLen)
	require.Equal(t, total, xlen(t, srv, stream), "audit has read nothing: nothing trimmed")

	// Without audit, the stream is trimmed back to maxlen, approximately
	// (whole nodes of stream-node-max-entries, 100, are removed).
	srv.Do(t, "XGROUP", "DESTROY", stream, "audit")
	require.Eventually(t, func() bool { return xlen(t, srv, stream) < total }, 5*time.Second, 5*time.Millisecond)
	trimRound(t, srv, pub, maxLen)
	n := xlen(t, srv, stream)
	require.GreaterOrEqual(t, n, maxLen, "the newest maxlen entries are kept")
	require.LessOrEqual(t, n, 2*maxLen)
}

// TestTrimGuardLaggingGroup: a group that has read part of the stream and
// acked it keeps what it has not read yet, however far past maxlen, while
// what every group has acked is trimmed down to maxlen.
func TestTrimGuardLaggingGroup(t *testing.T) {
	srv := redistest.Start(t)
	const stream, maxLen = "events:trim-lag", 100
	cfg := opsConfig(srv.URL(), "hub")
	cfg.MaxLen = maxLen
	pub := opsPublisher(t, cfg)
	srv.Do(t, "XGROUP", "CREATE", stream, "hub", "0", "MKSTREAM")

	publishN(t, pub, stream, "m", 1000)
	// hub reads and acks the first 700 (redis-cli here: no subscriber).
	ids := srv.Do(t, "XRANGE", stream, "-", "+", "COUNT", "700")
	srv.Do(t, "XREADGROUP", "GROUP", "hub", "x", "COUNT", "700", "STREAMS", stream, ">")
	var acked []string
	for _, line := range strings.Split(ids, "\n") {
		if isStreamID(line) {
			acked = append(acked, line)
		}
	}
	require.Len(t, acked, 700)
	srv.Do(t, append([]string{"XACK", stream, "hub"}, acked...)...)

	trimRound(t, srv, pub, maxLen)
	n := xlen(t, srv, stream)
	require.GreaterOrEqual(t, n, 300, "the 300 unread entries are kept")
	require.Less(t, n, 1000, "acked entries beyond maxlen are trimmed")
	// The 300 unread arrive.
	out := srv.Do(t, "XREADGROUP", "GROUP", "hub", "x", "COUNT", "1000", "STREAMS", stream, ">")
	require.Contains(t, out, "m700")
	require.Contains(t, out, "m999")
}

// TestTrimUnreadAllowed: with allow_trim_unread every XADD carries
// MAXLEN ~ maxlen, as watermill-redisstream does, lagging groups or not.
func TestTrimUnreadAllowed(t *testing.T) {
	srv := redistest.Start(t)
	const stream, maxLen = "events:trim-unread", 100
	cfg := opsConfig(srv.URL(), "hub")
	cfg.MaxLen = maxLen
	cfg.AllowTrimUnread = true
	cfg.TrimInterval = time.Hour // no trimmer: XADD trims
	pub := opsPublisher(t, cfg)
	srv.Do(t, "XGROUP", "CREATE", stream, "hub", "0", "MKSTREAM")

	publishN(t, pub, stream, "m", 1000)
	n := xlen(t, srv, stream)
	require.GreaterOrEqual(t, n, maxLen)
	require.LessOrEqual(t, n, 2*maxLen, "trimmed by XADD at once, unread or not")
	require.Equal(t, 1000, commandCalls(t, srv, "xadd"))
	require.Zero(t, commandCalls(t, srv, "xtrim"), "no separate XTRIM")
}

// isStreamID tells an entry ID ("1700000000000-0") from the other lines of
// redis-cli's output.
func isStreamID(s string) bool {
	ms, seq, ok := strings.Cut(s, "-")
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return ok && err1 == nil && err2 == nil
}
