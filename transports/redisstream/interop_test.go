package redisstream

import (
	"context"
	"strings"
	"testing"
	"time"

	wmredis "github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// The interop tests run against a real redis-server, with consumer groups
// on both sides: what we publish a watermill-redisstream v1.4.5 subscriber
// reads, what its publisher writes we read, and flat entries are read back
// and readable with redis-cli. wire_test.go checks the same messages
// without Redis.

// interopCases are wireCases with one map32 metadata (more than 65535
// keys): enough to cross that boundary, few enough to stay quick.
func interopCases() []wireCase {
	return append(wireCases(false), wireCase{name: "70000 keys", uuid: "u-70000", payload: []byte("many"), md: manyKeys(70000)})
}

// interopClient is a client of srv of its own: watermill-redisstream's
// publisher and subscriber close the client they are given.
func interopClient(t testing.TB, srv *redistest.Server) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt.ContextTimeoutEnabled = true
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// receiveAll acks and returns, by UUID, the first delivery of n distinct
// messages.
func receiveAll(t *testing.T, ch <-chan *message.Message, n int) map[string]*message.Message {
	t.Helper()
	got := make(map[string]*message.Message, n)
	timeout := time.After(30 * time.Second)
	for len(got) < n {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed after %d of %d messages", len(got), n)
			}
			m.Ack()
			if _, dup := got[m.UUID]; !dup {
				got[m.UUID] = m
			}
		case <-timeout:
			t.Fatalf("received %d of %d messages", len(got), n)
		}
	}
	return got
}

// requireAllAcked waits until group has no pending entry on stream.
func requireAllAcked(t *testing.T, srv *redistest.Server, stream, group string) {
	t.Helper()
	var pending string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		pending, _, _ = strings.Cut(srv.Do(t, "XPENDING", stream, group), "\n")
		if pending == "0" {
			return
		}
	}
	t.Fatalf("group %s has %s pending entries on %s", group, pending, stream)
}

func requireReceived(t *testing.T, want []*message.Message, got map[string]*message.Message) {
	t.Helper()
	for _, w := range want {
		g, ok := got[w.UUID]
		if !ok {
			t.Fatalf("%s not received", w.UUID)
		}
		requireSame(t, w, g)
	}
}

func messagesOf(cases []wireCase, uuidPrefix string) []*message.Message {
	msgs := make([]*message.Message, len(cases))
	for i, c := range cases {
		msgs[i] = wireMsg(uuidPrefix+c.uuid, c.payload, c.md)
	}
	return msgs
}

func TestInteropWatermillSubscriberReadsOurs(t *testing.T) {
	srv := redistest.Start(t)
	const stream, group = "interop:ours-to-watermill", "watermill-group"

	pub, err := NewPublisher(Config{}, interopClient(t, srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	want := messagesOf(interopCases(), "")
	if err := pub.Publish(stream, want...); err != nil {
		t.Fatal(err)
	}

	sub, err := wmredis.NewSubscriber(wmredis.SubscriberConfig{
		Client:                        interopClient(t, srv),
		ConsumerGroup:                 group,
		Consumer:                      "watermill-consumer",
		OldestId:                      "0",
		BlockTime:                     50 * time.Millisecond,
		DisableIndefiniteInitialBlock: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.Subscribe(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	requireReceived(t, want, receiveAll(t, ch, len(want)))
	requireAllAcked(t, srv, stream, group)
}

func TestInteropWeReadWatermillPublisher(t *testing.T) {
	srv := redistest.Start(t)
	const stream, group = "interop:watermill-to-ours", "our-group"

	pub, err := wmredis.NewPublisher(wmredis.PublisherConfig{Client: interopClient(t, srv)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	want := messagesOf(interopCases(), "")
	if err := pub.Publish(stream, want...); err != nil {
		t.Fatal(err)
	}

	sub, err := NewSubscriber(Config{ConsumerGroup: group, Consumer: "our-consumer", StartID: "0"}, interopClient(t, srv), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.Subscribe(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	requireReceived(t, want, receiveAll(t, ch, len(want)))
	requireAllAcked(t, srv, stream, group)
}

// TestInteropFlat publishes flat entries and watermill entries to one
// stream: a subscriber reads both, whatever its own format. redis-cli shows
// the flat fields as plain text.
func TestInteropFlat(t *testing.T) {
	srv := redistest.Start(t)
	const stream, group = "interop:flat", "our-group"
	client := interopClient(t, srv)

	flat, err := NewPublisher(Config{Format: FormatFlat}, client, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer flat.Close()
	wmFormat, err := NewPublisher(Config{}, client, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wmFormat.Close()

	flatMsgs := messagesOf(interopCases(), "flat-")
	wmMsgs := messagesOf(interopCases(), "watermill-")
	for i := range flatMsgs {
		if err := flat.Publish(stream, flatMsgs[i]); err != nil {
			t.Fatal(err)
		}
		if err := wmFormat.Publish(stream, wmMsgs[i]); err != nil {
			t.Fatal(err)
		}
	}

	sub, err := NewSubscriber(Config{ConsumerGroup: group, Consumer: "our-consumer", StartID: "0", Format: FormatFlat}, client, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.Subscribe(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	got := receiveAll(t, ch, len(flatMsgs)+len(wmMsgs))
	requireReceived(t, flatMsgs, got)
	requireReceived(t, wmMsgs, got)
	requireAllAcked(t, srv, stream, group)

	// What another language's client sees.
	const readable = "events:chat"
	m := wireMsg("6f1c1a3e-0000-4000-8000-0000000000aa", []byte(`{"text":"hello"}`), map[string]string{
		"event_type": "chat_message", "event_key": "req-123",
		"published_at": "2025-01-02T03:04:05.123456789Z", "transport": "redis", "tenant": "acme",
	})
	if err := flat.Publish(readable, m); err != nil {
		t.Fatal(err)
	}
	out := srv.Do(t, "XRANGE", readable, "-", "+")
	t.Logf("redis-cli XRANGE %s - +\n%s", readable, out)
	lines := strings.Split(out, "\n")
	fields := map[string]string{}
	for i := 1; i+1 < len(lines); i += 2 { // lines[0] is the entry ID
		fields[lines[i]] = lines[i+1]
	}
	want := map[string]string{
		"id":             m.UUID,
		"event_type":     "chat_message",
		"event_key":      "req-123",
		"published_at":   "2025-01-02T03:04:05.123456789Z",
		"meta.transport": "redis",
		"meta.tenant":    "acme",
		"payload":        `{"text":"hello"}`,
	}
	if diff := metadataDiff(want, fields); diff != "" {
		t.Fatalf("XRANGE fields: %s\n%s", diff, out)
	}
	if strings.Count(lines[0], "-") != 1 {
		t.Fatalf("XRANGE first line %q is not an entry ID", lines[0])
	}
}
