package docs_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/middleware"
	_ "github.com/switchyard-go/switchyard/transports/all"
)

// The topic and event types the buses under test carry: the chat service's.
const (
	topic            = "events:chat"
	eventChatMessage = "chat_message"
	eventTyping      = "typing"
)

// scrapedFamily is a family of a scrape: its type and, per series, its
// labels and value (a histogram's: its count).
type scrapedFamily struct {
	typ    string
	series []scrapedSeries
}

type scrapedSeries struct {
	labels map[string]string
	value  float64
}

func (f scrapedFamily) value(labels map[string]string) (float64, bool) {
	for _, s := range f.series {
		if maps.Equal(s.labels, labels) {
			return s.value, true
		}
	}
	return 0, false
}

func parseExposition(text string) (map[string]scrapedFamily, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, err
	}
	out := make(map[string]scrapedFamily, len(families))
	for name, mf := range families {
		f := scrapedFamily{typ: strings.ToLower(mf.GetType().String())}
		for _, m := range mf.GetMetric() {
			s := scrapedSeries{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				s.value = m.GetCounter().GetValue()
			case m.Gauge != nil:
				s.value = m.GetGauge().GetValue()
			case m.Histogram != nil:
				s.value = float64(m.GetHistogram().GetSampleCount())
			}
			f.series = append(f.series, s)
		}
		out[name] = f
	}
	return out, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// busUnderTest is a running bus whose registry is served over HTTP, as an
// application serves it to Prometheus.
type busUnderTest struct {
	*bus.Bus
	metricsURL string
	client     *http.Client
}

// busSetup is what startBus builds around the configuration.
type busSetup struct {
	// config is YAML, loaded over the defaults as LoadConfig does.
	config string
	// dedupe wraps the handler in a middleware.Dedupe registered on the
	// bus's registry.
	dedupe bool
}

// startBus builds a bus from setup on a registry of its own, with a
// handler on topic that accepts everything, runs it until the test ends,
// and serves the registry with promhttp. In-process transports time
// deliveries (metrics.in_process_delivery_latency), so that every
// configuration shows event_delivery_latency_seconds.
func startBus(t *testing.T, setup busSetup) *busUnderTest {
	t.Helper()
	cfg, err := bus.LoadConfig(
		bus.FromMap(map[string]any{"metrics.in_process_delivery_latency": true}),
		bus.FromBytes([]byte(setup.config), "yaml"))
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	b, err := bus.New(cfg, bus.WithRegisterer(reg),
		bus.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	require.NoError(t, err)
	var h message.NoPublishHandlerFunc = func(*message.Message) error { return nil }
	if setup.dedupe {
		d, err := middleware.NewDedupe(middleware.DedupeConfig{TTL: time.Minute}, middleware.WithRegisterer(reg))
		require.NoError(t, err)
		h = d.Handler(h)
	}
	require.NoError(t, b.Handle("hub", topic, h))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	t.Cleanup(func() {
		srv.Close()
		cancel()
		assert.NoError(t, b.Close())
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after Close")
		}
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	select {
	case <-b.Running():
	case err := <-done:
		done <- err
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the bus is not running")
	}
	return &busUnderTest{Bus: b, metricsURL: srv.URL, client: srv.Client()}
}

// publishBoth publishes a chat_message and a typing event of key, each
// until a transport took it.
func (b *busUnderTest) publishBoth(t *testing.T, key string) {
	t.Helper()
	for _, typ := range []string{eventChatMessage, eventTyping} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := b.PublishSync(ctx, topic, bus.NewMessage(typ, key, []byte(`{"request_id":"`+key+`"}`)))
		cancel()
		require.NoError(t, err, typ)
	}
}

// scrape reads the registry over HTTP and parses it.
func (b *busUnderTest) scrape() (string, map[string]scrapedFamily, error) {
	resp, err := b.client.Get(b.metricsURL)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	families, err := parseExposition(string(body))
	return string(body), families, err
}

// scrapeWhen scrapes until ready holds of a scrape, then returns a scrape
// taken after it. A scrape is no snapshot: the registry collects its
// families one after another while events go on, so checks are made on
// the later one, which sees all that happened before ready held.
func (b *busUnderTest) scrapeWhen(t *testing.T, what string, ready func(map[string]scrapedFamily) bool) (string, map[string]scrapedFamily) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, families, err := b.scrape()
		return err == nil && ready(families)
	}, 10*time.Second, 10*time.Millisecond, what)
	text, families, err := b.scrape()
	require.NoError(t, err)
	return text, families
}

// handled reports whether events of each type were published on
// transport and delivered to the handler from it. The publish is counted
// after the transport took the event, which may be after the delivery.
func handled(f map[string]scrapedFamily, transport string, eventTypes ...string) bool {
	for _, typ := range eventTypes {
		published, _ := f["switchyard_events_published_total"].value(map[string]string{"transport": transport, "event_type": typ, "outcome": "ok"})
		delivered, _ := f["event_delivery_latency_seconds"].value(map[string]string{"transport": transport, "event_type": typ})
		if published < 1 || delivered < 1 {
			return false
		}
	}
	return true
}

func labelNames(labels map[string]string) []string {
	if len(labels) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(labels))
}

// checkScrapeMatchesDoc requires the documented families with a series
// condition in expect, and those named in events, in the scrape, and the
// other documented families not in it; and every family of ours in the
// scrape to be documented, with its type and labels.
func checkScrapeMatchesDoc(t *testing.T, doc map[string]docMetric, scraped map[string]scrapedFamily, expect []string, events ...string) {
	t.Helper()
	for _, s := range expect {
		require.Contains(t, seriesValues, s)
	}
	for _, name := range events {
		require.Contains(t, doc, name)
	}
	for name, m := range doc {
		_, present := scraped[name]
		if slices.ContainsFunc(m.series, func(s string) bool { return slices.Contains(expect, s) }) || slices.Contains(events, name) {
			assert.True(t, present, "%s (metrics.md:%d, %s) is not in the scrape", name, m.line, m.seriesCell())
		} else {
			assert.False(t, present, "%s (metrics.md:%d) is in the scrape, but documented %q", name, m.line, m.seriesCell())
		}
	}
	for name, f := range scraped {
		if !isOurs(name) {
			continue
		}
		m, ok := doc[name]
		if !assert.True(t, ok, "%s is exported but not documented in metrics.md", name) {
			continue
		}
		assert.Equal(t, m.typ, f.typ, "type of %s (metrics.md:%d)", name, m.line)
		for _, s := range f.series {
			assert.Equal(t, m.labels, labelNames(s.labels), "labels of %s (metrics.md:%d)", name, m.line)
		}
	}
}

// lintExposition runs promlint, what `promtool check metrics` runs, on a
// scrape; and promtool itself when it is installed.
func lintExposition(t *testing.T, text string) {
	t.Helper()
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems, "promlint")
	if path, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(path, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "promtool check metrics: %s", out)
	}
}
