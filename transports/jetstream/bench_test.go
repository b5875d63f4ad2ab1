package jetstream_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/jetstream"
	"github.com/switchyard-go/switchyard/transports/jetstream/jstest"
)

// BenchmarkPublish compares, on one embedded server and one stream, the
// transport's Publish (each call waits for its acknowledgement; many
// callers at once, as the bus's lanes publish) with nats.go's own async
// publish of the same messages (send all, then wait for every
// acknowledgement, waiting for room under the same bound of unacknowledged
// publishes), the fastest way nats.go stores messages. Both carry the same
// headers and payload. Each count runs both, one after the other.
//
//	go test -run '^$' -bench BenchmarkPublish -count 8 ./transports/jetstream/ | tee js.txt
//	benchstat -col /path js.txt
func BenchmarkPublish(b *testing.B) {
	srv := jstest.Start(b)
	payload := make([]byte, 256)
	newMsg := func(i int64) *message.Message {
		m := message.NewMessage("b-"+strconv.FormatInt(i, 10), payload)
		m.Metadata.Set("event_type", "chat_message")
		m.Metadata.Set("event_key", "req-"+strconv.FormatInt(i%64, 10))
		m.Metadata.Set("published_at", "2026-12-06T05:00:00.123456789Z")
		return m
	}
	cfg := jetstream.Config{URL: srv.URL(), Storage: "memory", MaxMsgs: 100000}
	nc, err := jetstream.Connect(cfg, "bench", nil)
	require.NoError(b, err)
	defer nc.Close()
	pub, err := jetstream.NewPublisher(cfg, nc, nil)
	require.NoError(b, err)
	defer pub.Close()
	const topic = "bench"
	require.NoError(b, pub.Publish(topic, newMsg(-1))) // makes the stream
	var seq atomic.Int64

	b.Run("path=transport", func(b *testing.B) {
		b.SetParallelism(64) // 64 callers per CPU, each waiting for its ack
		b.SetBytes(int64(len(payload)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := pub.Publish(topic, newMsg(seq.Add(1))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})

	b.Run("path=raw_async", func(b *testing.B) {
		j, err := njs.New(nc, njs.WithPublishAsyncMaxPending(jetstream.DefaultMaxPending))
		require.NoError(b, err)
		b.SetBytes(int64(len(payload)))
		b.ResetTimer()
		for range b.N {
			m := newMsg(seq.Add(1))
			nm := nats.NewMsg(topic)
			nm.Data = m.Payload
			for k, v := range m.Metadata {
				nm.Header.Set(k, v)
			}
			nm.Header.Set(jetstream.UUIDHeader, m.UUID)
			nm.Header.Set(nats.MsgIdHdr, m.UUID)
			if _, err := j.PublishMsgAsync(nm, njs.WithStallWait(time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		select {
		case <-j.PublishAsyncComplete():
		case <-ctx.Done():
			b.Fatal("acknowledgements missing")
		}
	})
}
