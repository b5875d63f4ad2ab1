package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/middleware"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

const (
	metricsDocPath = "../../docs/metrics.md"
	dashboardPath  = "../../docs/grafana/switchyard.json"
)

// The format of the tables of docs/metrics.md: a table whose first column
// is "metric" must have exactly these columns.
const (
	metricsTableHeader = "| metric | type | series | meaning | alert on |"
	metricsTableRule   = "|---|---|---|---|---|"
)

// When a documented family has series: the values of the "series" column.
const (
	seriesFromStart  = "from start"
	seriesCoalescing = "with coalescing"
	seriesFallback   = "with fallback"
	seriesRedis      = "with redis"
	seriesMemory     = "with memory"
	seriesDedupe     = "with dedupe"
	seriesOnEvent    = "on first event"
)

var seriesValues = []string{seriesFromStart, seriesCoalescing, seriesFallback, seriesRedis, seriesMemory, seriesDedupe, seriesOnEvent}

// ourPrefixes are the prefixes of the families switchyard exports: every
// family in a scrape that has one must be documented.
var ourPrefixes = []string{"switchyard_", "event_", "events_"}

func isOurs(name string) bool {
	return slices.ContainsFunc(ourPrefixes, func(p string) bool { return strings.HasPrefix(name, p) })
}

// docMetric is a row of a table of docs/metrics.md.
type docMetric struct {
	name   string
	labels []string // sorted
	typ    string   // counter, gauge or histogram
	series string
	line   int
}

var docMetricCell = regexp.MustCompile("^`([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\\{([a-zA-Z_][a-zA-Z0-9_]*(?:,[a-zA-Z_][a-zA-Z0-9_]*)*)\\})?`$")

// splitRow splits a Markdown table row into its trimmed cells; \| is a
// pipe inside a cell.
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	line = strings.TrimSuffix(line, "|")
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cell.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cell.String()))
}

// readMetricsDoc parses every metric table of docs/metrics.md, strictly: a
// malformed table or row fails the test rather than being skipped.
func readMetricsDoc(t *testing.T) map[string]docMetric {
	t.Helper()
	text, err := os.ReadFile(metricsDocPath)
	require.NoError(t, err)
	lines := strings.Split(string(text), "\n")
	doc := map[string]docMetric{}
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(strings.TrimSpace(lines[i]), "| metric ") {
			continue
		}
		require.Equal(t, metricsTableHeader, strings.TrimSpace(lines[i]), "metrics.md:%d: the header of a metric table", i+1)
		require.Less(t, i+1, len(lines))
		require.Equal(t, metricsTableRule, strings.TrimSpace(lines[i+1]), "metrics.md:%d", i+2)
		for i += 2; i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "|"); i++ {
			cells := splitRow(lines[i])
			require.Len(t, cells, 5, "metrics.md:%d: %s", i+1, lines[i])
			m := docMetricCell.FindStringSubmatch(cells[0])
			require.NotNil(t, m, "metrics.md:%d: the first cell is `name` or `name{label,…}`, got %s", i+1, cells[0])
			row := docMetric{name: m[1], typ: cells[1], series: cells[2], line: i + 1}
			if m[2] != "" {
				row.labels = strings.Split(m[2], ",")
				slices.Sort(row.labels)
			}
			require.Contains(t, []string{"counter", "gauge", "histogram"}, row.typ, "metrics.md:%d: type", i+1)
			require.Contains(t, seriesValues, row.series, "metrics.md:%d: series", i+1)
			require.NotEmpty(t, cells[3], "metrics.md:%d: meaning", i+1)
			require.NotEmpty(t, cells[4], "metrics.md:%d: alert on", i+1)
			_, dup := doc[row.name]
			require.False(t, dup, "metrics.md:%d: %s is documented twice", i+1, row.name)
			doc[row.name] = row
		}
	}
	// The names operators of the original service know.
	for _, name := range []string{"event_publish_duration_seconds", "event_queue_depth", "events_coalesced_total"} {
		require.Contains(t, doc, name)
	}
	return doc
}

// TestMetricsDocSeriesLegend checks that the legend of the series column
// lists exactly the values the tables may use.
func TestMetricsDocSeriesLegend(t *testing.T) {
	text, err := os.ReadFile(metricsDocPath)
	require.NoError(t, err)
	var legend []string
	in := false
	for line := range strings.Lines(string(text)) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "| series |"):
			in = true
		case in && strings.HasPrefix(line, "|---"):
		case in && strings.HasPrefix(line, "|"):
			legend = append(legend, strings.Trim(splitRow(line)[0], "`"))
		default:
			in = false
		}
	}
	assert.ElementsMatch(t, seriesValues, legend)
}

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

// chatUnderTest is the chat example running for one test.
type chatUnderTest struct {
	base   string
	client *http.Client
}

// startChat runs the example as main does, with args, on a free port, until
// the test ends.
func startChat(t *testing.T, args ...string) *chatUnderTest {
	t.Helper()
	env := map[string]string{"ADDR": "127.0.0.1:0"}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, func(k string) string { return env[k] }, logs, ready) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Error("run did not return after its context ended")
		}
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	c := &chatUnderTest{client: &http.Client{Timeout: 5 * time.Second}}
	t.Cleanup(c.client.CloseIdleConnections)
	select {
	case addr := <-ready:
		c.base = "http://" + addr
	case err := <-done:
		done <- err
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	return c
}

// publishBoth publishes a chat_message and a typing event through the API.
func (c *chatUnderTest) publishBoth(t *testing.T, requestID string) {
	t.Helper()
	for _, p := range []struct{ path, body string }{
		{"/api/v1/messages", `{"request_id":"` + requestID + `","content":"hello"}`},
		{"/api/v1/requests/" + requestID + "/typing", ``},
	} {
		resp, err := c.client.Post(c.base+p.path, "application/json", strings.NewReader(p.body))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode, p.path)
	}
}

// scrape reads /metrics over HTTP and parses it.
func (c *chatUnderTest) scrape() (string, map[string]scrapedFamily, error) {
	resp, err := c.client.Get(c.base + "/metrics")
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
func (c *chatUnderTest) scrapeWhen(t *testing.T, what string, ready func(map[string]scrapedFamily) bool) (string, map[string]scrapedFamily) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, families, err := c.scrape()
		return err == nil && ready(families)
	}, 10*time.Second, 10*time.Millisecond, what)
	text, families, err := c.scrape()
	require.NoError(t, err)
	return text, families
}

// handled reports whether events of each type were published on
// transport and delivered to the hub from it. The publish is counted after
// the transport took the event, which may be after the delivery.
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
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// checkScrapeMatchesDoc requires the documented families whose series
// column is in expect, and those named in events, in the scrape, and the
// other documented families not in it; and every family of ours in the
// scrape to be documented, with its type and labels.
func checkScrapeMatchesDoc(t *testing.T, doc map[string]docMetric, scraped map[string]scrapedFamily, expect []string, events ...string) {
	t.Helper()
	for name, m := range doc {
		_, present := scraped[name]
		if slices.Contains(expect, m.series) || slices.Contains(events, name) {
			assert.True(t, present, "%s (metrics.md:%d, %s) is not in the scrape", name, m.line, m.series)
		} else {
			assert.False(t, present, "%s (metrics.md:%d) is in the scrape, but documented %q", name, m.line, m.series)
		}
	}
	for _, name := range events {
		require.Contains(t, doc, name)
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
			assert.Equal(t, m.labels, nilIfEmpty(labelNames(s.labels)), "labels of %s (metrics.md:%d)", name, m.line)
		}
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
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

// TestMetricsMatchDocsOnMemory runs the example as `make run` does (memory,
// coalescing of typing on), publishes through its API and checks the
// scrape against docs/metrics.md.
func TestMetricsMatchDocsOnMemory(t *testing.T) {
	doc := readMetricsDoc(t)
	chat := startChat(t)
	chat.publishBoth(t, "r1")
	text, scraped := chat.scrapeWhen(t, "the hub got both events", func(f map[string]scrapedFamily) bool {
		return handled(f, "memory", EventChatMessage, EventTyping)
	})
	checkScrapeMatchesDoc(t, doc, scraped, []string{seriesFromStart, seriesCoalescing, seriesMemory}, "switchyard_memory_queue_depth")
	lintExposition(t, text)

	published := scraped["switchyard_events_published_total"]
	for _, typ := range []string{EventChatMessage, EventTyping} {
		n, ok := published.value(map[string]string{"transport": "memory", "event_type": typ, "outcome": "ok"})
		assert.True(t, ok, typ)
		assert.Equal(t, 1.0, n, typ)
	}
	assert.Len(t, published.series, 6, "one transport × (chat_message, typing, other) × (ok, error)")
	n, _ := scraped["switchyard_ingress_accepted_total"].value(map[string]string{})
	assert.Equal(t, 2.0, n)
	n, _ = scraped["events_coalesced_total"].value(map[string]string{"event_type": EventTyping})
	assert.Equal(t, 0.0, n, "a lone typing event is published, not coalesced")
}

// TestMetricsMatchDocsWithoutCoalescing checks that the families
// documented "with coalescing" are the ones that go with it.
func TestMetricsMatchDocsWithoutCoalescing(t *testing.T) {
	doc := readMetricsDoc(t)
	config := filepath.Join(t.TempDir(), "chat.yaml")
	require.NoError(t, os.WriteFile(config, []byte("coalescing: {enabled: false}\n"), 0o600))
	chat := startChat(t, "-config", config)
	chat.publishBoth(t, "r1")
	text, scraped := chat.scrapeWhen(t, "the hub got both events", func(f map[string]scrapedFamily) bool {
		return handled(f, "memory", EventChatMessage, EventTyping)
	})
	checkScrapeMatchesDoc(t, doc, scraped, []string{seriesFromStart, seriesMemory}, "switchyard_memory_queue_depth")
	lintExposition(t, text)
}

// TestMetricsMatchDocsWithFallback runs the example with a rollout to an
// HTTP hub that fails every request, with fallback to memory: the routing
// families appear, as documented.
func TestMetricsMatchDocsWithFallback(t *testing.T) {
	doc := readMetricsDoc(t)
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(hub.Close)
	config := filepath.Join(t.TempDir(), "chat.yaml")
	require.NoError(t, os.WriteFile(config, []byte(`
transports:
  memory: {type: memory}
  hub: {type: http, url: "`+hub.URL+`/api/v1/events/{topic}", max_retries: -1}
routing:
  baseline: memory
  candidate: hub
  enabled: true
  percentage: 100
  fallback: {enabled: true, to: memory}
`), 0o600))

	chat := startChat(t, "-config", config)
	chat.publishBoth(t, "r1")
	text, scraped := chat.scrapeWhen(t, "both events fell back to memory and reached the hub", func(f map[string]scrapedFamily) bool {
		return handled(f, "memory", EventChatMessage, EventTyping)
	})
	checkScrapeMatchesDoc(t, doc, scraped, []string{seriesFromStart, seriesCoalescing, seriesFallback, seriesMemory}, "switchyard_fallbacks_total", "switchyard_memory_queue_depth")
	lintExposition(t, text)

	// The chat message fails on the hub; its key is then held on the
	// fallback for the cooldown, so the typing event is not tried there.
	published := scraped["switchyard_events_published_total"]
	for _, c := range []struct {
		transport, typ, outcome string
		want                    float64
	}{
		{"hub", EventChatMessage, "error", 1},
		{"hub", EventTyping, "error", 0},
		{"memory", EventChatMessage, "ok", 1},
		{"memory", EventTyping, "ok", 1},
	} {
		n, _ := published.value(map[string]string{"transport": c.transport, "event_type": c.typ, "outcome": c.outcome})
		assert.Equal(t, c.want, n, "%+v", c)
	}
	for reason, want := range map[string]float64{"error": 1, "cooldown": 1} {
		n, _ := scraped["switchyard_fallbacks_total"].value(map[string]string{"from": "hub", "to": "memory", "reason": reason})
		assert.Equal(t, want, n, reason)
	}
	state, ok := scraped["switchyard_circuit_breaker_state"].value(map[string]string{"transport": "hub"})
	assert.True(t, ok)
	assert.Equal(t, 0.0, state, "two failures are under the threshold: closed")
}

// TestMetricsMatchDocsOnRedis runs the example on its Redis configuration
// and makes the Redis subscriber count what it counts: a claimed entry, a
// malformed one, a consumer group deleted with its stream.
func TestMetricsMatchDocsOnRedis(t *testing.T) {
	doc := readMetricsDoc(t)
	srv := redistest.Start(t)
	file, err := os.ReadFile("redis.yaml")
	require.NoError(t, err)
	const fileURL, group = "redis://127.0.0.1:6380/0", "consumer_group: hub"
	require.Contains(t, string(file), fileURL)
	require.Contains(t, string(file), group)
	text := strings.Replace(string(file), fileURL, srv.URL(), 1)
	// Claims come at once, so that the test need not wait 30 s for one.
	text = strings.Replace(text, group, group+"\n    claim_interval: 20ms\n    claim_min_idle: 10ms", 1)
	config := filepath.Join(t.TempDir(), "redis.yaml")
	require.NoError(t, os.WriteFile(config, []byte(text), 0o600))

	chat := startChat(t, "-config", config)
	chat.publishBoth(t, "r1")
	stream := map[string]string{"stream": Topic}
	_, _ = chat.scrapeWhen(t, "the hub got both events from Redis, and the depth is known", func(f map[string]scrapedFamily) bool {
		_, depth := f["event_queue_depth"].value(stream)
		return handled(f, "redis", EventChatMessage, EventTyping) && depth
	})

	// An entry acked by the hub, made pending for a consumer that is gone:
	// the subscriber claims it back.
	id := strings.TrimSpace(strings.SplitN(srv.Do(t, "XRANGE", Topic, "-", "+", "COUNT", "1"), "\n", 2)[0])
	require.NotEmpty(t, id)
	srv.Do(t, "XCLAIM", Topic, "hub", "gone", "0", id, "FORCE")
	_, _ = chat.scrapeWhen(t, "the entry is claimed", func(f map[string]scrapedFamily) bool {
		n, _ := f["switchyard_redis_claimed_total"].value(stream)
		return n >= 1
	})

	// An entry that is not a message: dead-lettered as malformed.
	srv.Do(t, "XADD", Topic, "*", "not", "a message")
	_, _ = chat.scrapeWhen(t, "the malformed entry is dead-lettered", func(f map[string]scrapedFamily) bool {
		n, _ := f["switchyard_redis_dead_lettered_total"].value(map[string]string{"stream": Topic, "reason": "malformed"})
		return n == 1
	})

	// The stream deleted, and its group with it: created again.
	srv.Do(t, "DEL", Topic)
	text, scraped := chat.scrapeWhen(t, "the group is created again", func(f map[string]scrapedFamily) bool {
		n, _ := f["switchyard_redis_group_recreated_total"].value(stream)
		return n == 1
	})
	// The default memory transport stays beside Redis (it takes dead
	// letters).
	checkScrapeMatchesDoc(t, doc, scraped, []string{seriesFromStart, seriesCoalescing, seriesRedis, seriesMemory},
		"switchyard_redis_claimed_total", "switchyard_redis_dead_lettered_total", "switchyard_redis_group_recreated_total",
		"switchyard_redis_stream_resets_total")
	lintExposition(t, text)
	_, ok := scraped["switchyard_circuit_breaker_state"]
	assert.False(t, ok, "no rollout, no breaker")
}

// recordingRegisterer registers on a registry and keeps every collector,
// so that a test can list every family registered, even those with no
// series yet (a vector nothing has been counted in).
type recordingRegisterer struct {
	*prometheus.Registry
	mu         sync.Mutex
	collectors []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	r.collectors = append(r.collectors, c)
	r.mu.Unlock()
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// describedFamily is what a collector's Desc says: a name and label names.
type describedFamily struct {
	name   string
	labels []string // sorted
}

// describe lists the families of c from its descriptions. A Desc does not
// show its name or labels, so each is given one series of made-up label
// values (as many as the Desc accepts) and gathered on a registry of its
// own.
func describe(t *testing.T, c prometheus.Collector) []describedFamily {
	t.Helper()
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var descs []*prometheus.Desc
	for d := range ch {
		descs = append(descs, d)
	}
	var out []describedFamily
	for _, d := range descs {
		var sample prometheus.Metric
		for n := 0; n <= 16 && sample == nil; n++ {
			values := make([]string, n)
			for i := range values {
				values[i] = fmt.Sprint("v", i)
			}
			sample, _ = prometheus.NewConstMetric(d, prometheus.UntypedValue, 0, values...)
		}
		require.NotNil(t, sample, "no series fits %s", d)
		reg := prometheus.NewRegistry()
		require.NoError(t, reg.Register(oneSample{sample}))
		mfs, err := reg.Gather()
		require.NoError(t, err)
		require.Len(t, mfs, 1)
		f := describedFamily{name: mfs[0].GetName()}
		for _, l := range mfs[0].GetMetric()[0].GetLabel() {
			f.labels = append(f.labels, l.GetName())
		}
		slices.Sort(f.labels)
		out = append(out, f)
	}
	return out
}

type oneSample struct{ m prometheus.Metric }

func (o oneSample) Describe(ch chan<- *prometheus.Desc) { ch <- o.m.Desc() }
func (o oneSample) Collect(ch chan<- prometheus.Metric) { ch <- o.m }

// TestMetricsDocListsEveryRegisteredFamily builds a bus with every source
// of metrics (Redis Streams and HTTP transports, a rollout with fallback,
// coalescing) and a Dedupe on one registerer, and requires the families
// they register, with their labels, to be exactly those documented: the
// ones a scrape cannot show until something happens included.
func TestMetricsDocListsEveryRegisteredFamily(t *testing.T) {
	doc := readMetricsDoc(t)
	rec := &recordingRegisterer{Registry: prometheus.NewRegistry()}
	cfg := bus.DefaultConfig()
	// Nothing listens there: the bus is built, never run.
	cfg.Transports["redis"] = map[string]any{"type": "redisstream", "url": "redis://127.0.0.1:1/0", "consumer_group": "hub"}
	cfg.Transports["http"] = map[string]any{"type": "http", "url": "http://127.0.0.1:1/api/v1/events/{topic}",
		"receiver": map[string]any{"listen": "127.0.0.1:0"}}
	cfg.Routing.Baseline = "http"
	cfg.Routing.Candidate = "redis"
	cfg.Routing.Fallback.Enabled = true
	b, err := bus.New(cfg, bus.WithRegisterer(rec), bus.WithLoggerAdapter(watermill.NopLogger{}))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Close()) })
	_, err = middleware.NewDedupe(middleware.DedupeConfig{TTL: time.Minute}, middleware.WithRegisterer(rec))
	require.NoError(t, err)

	registered := map[string][]string{}
	rec.mu.Lock()
	collectors := slices.Clone(rec.collectors)
	rec.mu.Unlock()
	for _, c := range collectors {
		for _, f := range describe(t, c) {
			_, dup := registered[f.name]
			require.False(t, dup, "%s registered twice", f.name)
			registered[f.name] = f.labels
		}
	}
	for name, m := range doc {
		labels, ok := registered[name]
		if assert.True(t, ok, "%s (metrics.md:%d) is documented but never registered", name, m.line) {
			assert.Equal(t, m.labels, labels, "labels of %s (metrics.md:%d)", name, m.line)
		}
	}
	for name := range registered {
		assert.Contains(t, doc, name, "%s is registered but not documented in metrics.md", name)
	}

	// The types of the families that have series already.
	mfs, err := rec.Gather()
	require.NoError(t, err)
	require.NotEmpty(t, mfs)
	for _, mf := range mfs {
		if m, ok := doc[mf.GetName()]; ok {
			assert.Equal(t, m.typ, strings.ToLower(mf.GetType().String()), "type of %s (metrics.md:%d)", mf.GetName(), m.line)
		}
	}
}

// promQL checking: the metrics and labels an expression names must be
// documented ones. Good enough for the expressions of a dashboard and of
// alert rules, without a PromQL parser.
var (
	promSelector = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}`)
	promMatcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"`)
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promBraces   = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// targetLabels are added by Prometheus when it scrapes.
var targetLabels = []string{"job", "instance"}

// promUse is what an expression uses: the documented families and the
// labels it groups by.
type promUse struct {
	families []string
	grouping []string
}

// resolveMetric maps a name in an expression to its documented family: the
// name itself, or a histogram's _bucket, _sum or _count series.
func resolveMetric(doc map[string]docMetric, name string) (family string, bucket, ok bool) {
	if _, ok := doc[name]; ok {
		return name, false, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, found := strings.CutSuffix(name, suffix)
		if m, ok := doc[base]; found && ok && m.typ == "histogram" {
			return base, suffix == "_bucket", true
		}
	}
	return "", false, false
}

func checkPromQL(t *testing.T, doc map[string]docMetric, where, expr string) promUse {
	t.Helper()
	var use promUse
	allowed := slices.Clone(targetLabels)
	anyBucket := false
	for _, sel := range promSelector.FindAllStringSubmatch(expr, -1) {
		family, bucket, ok := resolveMetric(doc, sel[1])
		if !ok {
			continue // reported below
		}
		labels := append(slices.Clone(doc[family].labels), targetLabels...)
		if bucket {
			labels = append(labels, "le")
		}
		for _, m := range promMatcher.FindAllStringSubmatch(sel[2], -1) {
			assert.Contains(t, labels, m[1], "%s: %s has no label %s: %s", where, sel[1], m[1], expr)
		}
	}
	rest := promString.ReplaceAllString(expr, `""`)
	rest = promBraces.ReplaceAllString(rest, "")
	rest = promRange.ReplaceAllString(rest, "")
	var grouping []string
	for _, g := range promGrouping.FindAllStringSubmatch(rest, -1) {
		for l := range strings.SplitSeq(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				grouping = append(grouping, l)
			}
		}
	}
	rest = promGrouping.ReplaceAllString(rest, "")
	for _, id := range promIdent.FindAllString(rest, -1) {
		if !isOurs(id) {
			continue
		}
		family, bucket, ok := resolveMetric(doc, id)
		if !assert.True(t, ok, "%s: %s is not a documented metric: %s", where, id, expr) {
			continue
		}
		anyBucket = anyBucket || bucket
		use.families = append(use.families, family)
		allowed = append(allowed, doc[family].labels...)
	}
	assert.NotEmpty(t, use.families, "%s: no metric of ours in %s", where, expr)
	if anyBucket {
		allowed = append(allowed, "le")
	}
	for _, l := range grouping {
		assert.Contains(t, allowed, l, "%s: the metrics of %s have no label %s", where, expr, l)
	}
	slices.Sort(grouping)
	use.grouping = slices.Compact(grouping)
	return use
}

var (
	legendLabel     = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
	annotationLabel = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)
	// Grafana's $name in a query: a variable of the dashboard, or one of
	// Grafana's own ($__rate_interval).
	dashboardVariable = regexp.MustCompile(`\$([a-zA-Z_]+)`)
)

// TestDashboardUsesDocumentedMetrics parses the Grafana dashboard and
// requires every query to name documented metrics and labels, every legend
// to name labels its query keeps, and every panel to use the datasource
// variable.
func TestDashboardUsesDocumentedMetrics(t *testing.T) {
	doc := readMetricsDoc(t)
	raw, err := os.ReadFile(dashboardPath)
	require.NoError(t, err)
	type datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	type target struct {
		Datasource   *datasource `json:"datasource"`
		Expr         string      `json:"expr"`
		LegendFormat string      `json:"legendFormat"`
		RefID        string      `json:"refId"`
	}
	type panel struct {
		ID         int                      `json:"id"`
		Type       string                   `json:"type"`
		Title      string                   `json:"title"`
		Datasource *datasource              `json:"datasource"`
		GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
		Targets    []target                 `json:"targets"`
		Panels     []panel                  `json:"panels"`
	}
	var dash struct {
		UID        string  `json:"uid"`
		Title      string  `json:"title"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Type       string      `json:"type"`
				Name       string      `json:"name"`
				Query      any         `json:"query"`
				Definition string      `json:"definition"`
				Datasource *datasource `json:"datasource"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	require.NoError(t, dec.Decode(&dash))
	require.NotEmpty(t, dash.UID)
	require.NotEmpty(t, dash.Title)

	const dsVar = "${datasource}"
	variables := map[string]bool{}
	for _, v := range dash.Templating.List {
		variables[v.Name] = true
		switch v.Type {
		case "datasource":
			assert.Equal(t, "datasource", v.Name)
			assert.Equal(t, "prometheus", v.Query)
		case "query":
			require.NotNil(t, v.Datasource, "variable %s", v.Name)
			assert.Equal(t, dsVar, v.Datasource.UID, "variable %s", v.Name)
			checkPromQL(t, doc, "variable "+v.Name, v.Definition)
		}
	}
	require.True(t, variables["datasource"], "a datasource variable")

	used := map[string]bool{}
	ids := map[int]bool{}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			assert.False(t, ids[p.ID], "panel id %d twice", p.ID)
			ids[p.ID] = true
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			where := fmt.Sprintf("panel %q", p.Title)
			assert.Positive(t, p.GridPos.W, where)
			assert.Positive(t, p.GridPos.H, where)
			assert.LessOrEqual(t, p.GridPos.X+p.GridPos.W, 24, where)
			if assert.NotNil(t, p.Datasource, where) {
				assert.Equal(t, dsVar, p.Datasource.UID, where)
			}
			require.NotEmpty(t, p.Targets, where)
			for _, tg := range p.Targets {
				if assert.NotNil(t, tg.Datasource, where) {
					assert.Equal(t, dsVar, tg.Datasource.UID, where)
				}
				use := checkPromQL(t, doc, where, tg.Expr)
				for _, f := range use.families {
					used[f] = true
				}
				for _, m := range legendLabel.FindAllStringSubmatch(tg.LegendFormat, -1) {
					assert.Contains(t, use.grouping, m[1], "%s: the legend shows %s, which %s drops", where, m[1], tg.Expr)
				}
				for _, m := range dashboardVariable.FindAllStringSubmatch(tg.Expr, -1) {
					assert.True(t, variables[m[1]] || strings.HasPrefix(m[1], "__"), "%s: $%s is no variable of the dashboard", where, m[1])
				}
			}
		}
	}
	walk(dash.Panels)

	// What the dashboard is for.
	for _, name := range []string{
		"switchyard_events_published_total", "event_publish_duration_seconds", "event_delivery_latency_seconds",
		"switchyard_fallbacks_total", "switchyard_circuit_breaker_state", "switchyard_ingress_queue_depth",
		"event_queue_depth", "events_coalesced_total", "switchyard_ingress_dead_lettered_total",
		"switchyard_redis_dead_lettered_total", "switchyard_config_reloads_total",
	} {
		assert.True(t, used[name], "the dashboard shows %s", name)
	}
}

// TestMetricsDocQueriesUseDocumentedMetrics checks the PromQL of
// docs/metrics.md: the alert rules (and that they load as a rules file)
// and the examples.
func TestMetricsDocQueriesUseDocumentedMetrics(t *testing.T) {
	doc := readMetricsDoc(t)
	text, err := os.ReadFile(metricsDocPath)
	require.NoError(t, err)
	blocks := map[string][]string{}
	var lang string
	var block strings.Builder
	in := false
	sc := bufio.NewScanner(strings.NewReader(string(text)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in && strings.HasPrefix(line, "```"):
			in, lang = true, strings.TrimPrefix(line, "```")
			block.Reset()
		case in && line == "```":
			in = false
			blocks[lang] = append(blocks[lang], block.String())
		case in:
			block.WriteString(line + "\n")
		}
	}
	require.NoError(t, sc.Err())
	require.False(t, in, "an unclosed code block")

	require.NotEmpty(t, blocks["promql"])
	for _, q := range blocks["promql"] {
		checkPromQL(t, doc, "metrics.md promql", strings.TrimSpace(q))
	}

	var rules int
	alerted := map[string]bool{}
	for _, y := range blocks["yaml"] {
		var file struct {
			Groups []struct {
				Name  string `yaml:"name"`
				Rules []struct {
					Alert       string            `yaml:"alert"`
					Expr        string            `yaml:"expr"`
					For         string            `yaml:"for"`
					Annotations map[string]string `yaml:"annotations"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(y), &file))
		for _, g := range file.Groups {
			require.NotEmpty(t, g.Name)
			for _, r := range g.Rules {
				rules++
				require.NotEmpty(t, r.Alert)
				if r.For != "" {
					_, err := model.ParseDuration(r.For)
					assert.NoError(t, err, r.Alert)
				}
				use := checkPromQL(t, doc, "alert "+r.Alert, r.Expr)
				for _, f := range use.families {
					alerted[f] = true
				}
				for _, a := range r.Annotations {
					for _, m := range annotationLabel.FindAllStringSubmatch(a, -1) {
						assert.Contains(t, use.grouping, m[1], "alert %s: its text shows %s, which its expression drops", r.Alert, m[1])
					}
				}
			}
		}
	}
	require.Positive(t, rules, "the alert rules")
	// The alerts the issue asks for.
	for _, name := range []string{
		"switchyard_fallbacks_total", "switchyard_circuit_breaker_state", "switchyard_ingress_queue_depth",
		"event_queue_depth", "switchyard_ingress_dead_lettered_total", "switchyard_redis_dead_lettered_total",
		"event_publish_duration_seconds", "event_delivery_latency_seconds", "switchyard_config_reloads_total",
		"switchyard_redis_group_recreated_total", "switchyard_redis_lost_entries_total",
	} {
		assert.True(t, alerted[name], "an alert on %s", name)
	}
}
