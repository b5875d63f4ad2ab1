package bus

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports"
)

// leakyPassword holds what URL parsers disagree on, and bytes beyond ASCII.
const leakyPassword = "p/#?% @:Ünï€dé-ßecret"

const leakyURL = "redis://hub:" + leakyPassword + "@hub.example:6380/0"

// assertNoPasswordPiece fails if text holds any 4-byte piece of password, as
// it is or query-escaped.
func assertNoPasswordPiece(t *testing.T, password, what, text string) {
	t.Helper()
	for _, form := range []string{password, url.QueryEscape(password)} {
		for i := 0; i+minSecretPiece <= len(form); i++ {
			if piece := form[i : i+minSecretPiece]; strings.Contains(text, piece) {
				t.Errorf("%s holds %q, a piece of the password: %s", what, piece, text)
				return
			}
		}
	}
}

// recordingHandler keeps every record slog hands it, at every level, as a
// line of its message and attributes, the logger's own included.
type recordingHandler struct {
	mu    *sync.Mutex
	lines *[]string
	attrs []slog.Attr
}

func newRecordingHandler() *recordingHandler {
	return &recordingHandler{mu: new(sync.Mutex), lines: new([]string)}
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%s", a.Key, a.Value.String())
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	h.mu.Lock()
	*h.lines = append(*h.lines, b.String())
	h.mu.Unlock()
	return nil
}

func (h *recordingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &c
}

func (h *recordingHandler) WithGroup(string) slog.Handler { return h }

func (h *recordingHandler) text() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(*h.lines, "\n")
}

// leakyRegistry holds a transport type "leaky" whose Publish fails with an
// error that quotes its URL, raw and query-escaped, as a client library
// might, and logs it too.
func leakyRegistry() *transports.Registry {
	reg := transports.Default().Clone()
	reg.Register("leaky", func(s transports.Settings) (transports.Transport, error) {
		var cfg struct {
			URL         string `koanf:"url"`
			Description string `koanf:"description"`
		}
		if err := s.Decode(&cfg); err != nil {
			return transports.Transport{}, err
		}
		logger := s.Logger
		return transports.Transport{Publisher: publisherOf(func(string, ...*message.Message) error {
			err := fmt.Errorf("dial %s: refused (via /connect?target=%s)", cfg.URL, url.QueryEscape(cfg.URL))
			logger.Error("Publish failed", err, nil)
			return err
		})}, nil
	})
	return reg
}

type publisherOf func(topic string, msgs ...*message.Message) error

func (f publisherOf) Publish(topic string, msgs ...*message.Message) error { return f(topic, msgs...) }
func (f publisherOf) Close() error                                         { return nil }

func leakyConfig() Config {
	c := DefaultConfig()
	c.Transports["leaky"] = map[string]any{"type": "leaky", "url": leakyURL}
	c.Routing.Baseline = "leaky"
	c.Consume.From = []string{"memory"} // where the dead letters are
	c.Bus.MaxRetries = 1
	c.Bus.RetryBackoff = time.Millisecond
	return c
}

// What a transport's error quotes of the configuration's secrets, however
// it quotes them, leaves the bus in no error, log line or dead letter.
func TestRuntimeErrorsHoldNoSecret(t *testing.T) {
	logs := newRecordingHandler()
	b, err := New(leakyConfig(), WithRegistry(leakyRegistry()), WithLogger(slog.New(logs)))
	require.NoError(t, err)
	deadLetters := make(chan *message.Message, 1)
	require.NoError(t, b.Handle("dlq", "dead_letter", func(m *message.Message) error {
		deadLetters <- m
		return nil
	}))
	runDone := make(chan error, 1)
	go func() { runDone <- b.Run(context.Background()) }()
	t.Cleanup(func() {
		assert.NoError(t, b.Close())
		assert.NoError(t, <-runDone)
	})
	<-b.Running()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = b.PublishSync(ctx, "events:chat", NewMessage("chat_message", "c1", []byte("hi")))
	require.ErrorIs(t, err, ErrDeadLettered)
	assert.Contains(t, err.Error(), "hub.example:6380", "the error still says where")
	assertNoPasswordPiece(t, leakyPassword, "PublishSync's error", err.Error())

	select {
	case dl := <-deadLetters:
		for k, v := range dl.Metadata {
			assertNoPasswordPiece(t, leakyPassword, "dead letter's "+k, v)
		}
		assert.Contains(t, dl.Metadata.Get(MetaDeadLetterReason), "refused")
	case <-ctx.Done():
		t.Fatal("no dead letter")
	}
	require.NoError(t, b.Close())
	logged := logs.text()
	assert.Contains(t, logged, "Message dead-lettered")
	assert.Contains(t, logged, "Handler returned error")
	assert.Contains(t, logged, "Publish failed", "the transport's own log line")
	assertNoPasswordPiece(t, leakyPassword, "the log", logged)
}
