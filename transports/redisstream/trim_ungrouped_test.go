package redisstream_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// trimRoundGrouped is trimRound for a publisher that waits before trimming
// streams without groups: its canary has a group that has read it all.
func trimRoundGrouped(t *testing.T, srv *redistest.Server, pub message.Publisher, maxLen int) {
	t.Helper()
	const canary = "events:canary-grouped"
	if xlen(t, srv, canary) == 0 {
		srv.Do(t, "XGROUP", "CREATE", canary, "g", "$", "MKSTREAM")
	}
	for range 3 {
		publishN(t, pub, canary, "c", 2*maxLen+1)
		srv.Do(t, "XGROUP", "SETID", canary, "g", "$")
		require.Eventually(t, func() bool { return xlen(t, srv, canary) <= 2*maxLen },
			5*time.Second, 5*time.Millisecond, "the trimmer trims a stream its group has read")
	}
}

// TestTrimWaitsForAbsentGroups: a publisher that starts after Redis
// restarted empty (a whole host restarting) has never seen the consumer
// group its consumers will create again when they come back. It does not
// trim a stream without groups before trim_ungrouped_after, so the consumer
// that comes back within it reads everything; after it, the stream is
// trimmed to maxlen and the publisher says so.
func TestTrimWaitsForAbsentGroups(t *testing.T) {
	srv := redistest.Start(t)
	const stream, maxLen, total = "events:ungrouped", 100, 1000
	cfg := opsConfig(srv.URL(), "") // a producer alone
	cfg.MaxLen = maxLen
	cfg.TrimUngroupedAfter = time.Hour
	pub := opsPublisher(t, cfg)

	publishN(t, pub, stream, "m", total)
	trimRoundGrouped(t, srv, pub, maxLen)
	trimRoundGrouped(t, srv, pub, maxLen)
	require.Equal(t, total, xlen(t, srv, stream), "a stream without groups waits for them")

	// The consumer comes back, creates its group at 0 and reads it all.
	sub, _ := opsSubscriber(t, opsConfig(srv.URL(), "hub"))
	got := receiveAck(t, subscribe(t, sub, stream), total, 10*time.Second)
	require.Equal(t, payloads("m", total), got)
}

// TestTrimUngroupedAfter: once a stream has had no group for
// trim_ungrouped_after, it is trimmed to maxlen, as nothing reads it.
func TestTrimUngroupedAfter(t *testing.T) {
	srv := redistest.Start(t)
	const stream, maxLen, total = "events:nobody", 100, 1000
	cfg := opsConfig(srv.URL(), "")
	cfg.MaxLen = maxLen
	cfg.TrimUngroupedAfter = 300 * time.Millisecond
	logs := watermill.NewCaptureLogger()
	pub, err := redisstream.NewPublisher(cfg, nil, logs)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })

	publishN(t, pub, stream, "m", total)
	require.Eventually(t, func() bool { return xlen(t, srv, stream) <= 2*maxLen }, 5*time.Second, 5*time.Millisecond)
	told := 0
	for _, m := range logs.Captured()[watermill.InfoLogLevel] {
		if m.Msg == "Trimming a stream without consumer groups to maxlen" && m.Fields["stream"] == stream {
			told++
		}
	}
	require.Equal(t, 1, told, "said once")
}
