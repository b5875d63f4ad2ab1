package docs_test

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	metricsDocPath = "metrics.md"
	dashboardPath  = "grafana/switchyard.json"
)

// The format of the tables of metrics.md: a table whose first column is
// "metric" must have exactly these columns.
const (
	metricsTableHeader = "| metric | type | series | meaning | alert on |"
	metricsTableRule   = "|---|---|---|---|---|"
)

// When a documented family has series: the values of the "series" column.
// A family that more than one source exports lists each of its conditions,
// joined by seriesOr.
const (
	seriesFromStart  = "from start"
	seriesCoalescing = "with coalescing"
	seriesFallback   = "with fallback"
	seriesRedis      = "with redis"
	seriesJetStream  = "with jetstream"
	seriesMemory     = "with memory"
	seriesDedupe     = "with dedupe"
	seriesOnEvent    = "on first event"

	seriesOr = " or "
)

var seriesValues = []string{seriesFromStart, seriesCoalescing, seriesFallback, seriesRedis, seriesJetStream, seriesMemory, seriesDedupe, seriesOnEvent}

// ourPrefixes are the prefixes of the families switchyard exports: every
// family in a scrape that has one must be documented.
var ourPrefixes = []string{"switchyard_", "event_", "events_"}

func isOurs(name string) bool {
	return slices.ContainsFunc(ourPrefixes, func(p string) bool { return strings.HasPrefix(name, p) })
}

// docMetric is a row of a table of metrics.md.
type docMetric struct {
	name   string
	labels []string // sorted
	typ    string   // counter, gauge or histogram
	series []string // any one of them gives the family series
	line   int
}

func (m docMetric) seriesCell() string { return strings.Join(m.series, seriesOr) }

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

// readMetricsDoc parses every metric table of metrics.md, strictly: a
// malformed table or row fails the test rather than being skipped.
func readMetricsDoc(t *testing.T) map[string]docMetric {
	t.Helper()
	text, err := os.ReadFile(metricsDocPath)
	require.NoError(t, err)
	doc, err := parseMetricsDoc(string(text))
	require.NoError(t, err)
	// The names operators of the original service know.
	for _, name := range []string{"event_publish_duration_seconds", "event_queue_depth", "events_coalesced_total"} {
		require.Contains(t, doc, name)
	}
	return doc
}

// parseMetricsDoc is readMetricsDoc's parser; it fails on the first
// malformed table or row.
func parseMetricsDoc(text string) (map[string]docMetric, error) {
	lines := strings.Split(text, "\n")
	doc := map[string]docMetric{}
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(strings.TrimSpace(lines[i]), "| metric ") {
			continue
		}
		if got := strings.TrimSpace(lines[i]); got != metricsTableHeader {
			return nil, docErrorf(i, "the header of a metric table is %q, want %q", got, metricsTableHeader)
		}
		if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != metricsTableRule {
			return nil, docErrorf(i+1, "the header of a metric table is followed by %q", metricsTableRule)
		}
		rows := 0
		for i += 2; i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "|"); i++ {
			row, err := parseMetricRow(lines[i], i)
			if err != nil {
				return nil, err
			}
			if prev, dup := doc[row.name]; dup {
				return nil, docErrorf(i, "%s is documented twice (first on line %d)", row.name, prev.line)
			}
			doc[row.name] = row
			rows++
		}
		if rows == 0 {
			return nil, docErrorf(i, "a metric table without rows")
		}
	}
	if len(doc) == 0 {
		return nil, docErrorf(0, "no metric table")
	}
	return doc, nil
}

func parseMetricRow(line string, i int) (docMetric, error) {
	cells := splitRow(line)
	if len(cells) != 5 {
		return docMetric{}, docErrorf(i, "%d cells, want 5: %s", len(cells), line)
	}
	m := docMetricCell.FindStringSubmatch(cells[0])
	if m == nil {
		return docMetric{}, docErrorf(i, "the first cell is `name` or `name{label,…}`, got %s", cells[0])
	}
	row := docMetric{name: m[1], typ: cells[1], line: i + 1}
	if m[2] != "" {
		row.labels = strings.Split(m[2], ",")
		slices.Sort(row.labels)
		if len(slices.Compact(slices.Clone(row.labels))) != len(row.labels) {
			return docMetric{}, docErrorf(i, "a label twice in %s", cells[0])
		}
	}
	if !slices.Contains([]string{"counter", "gauge", "histogram"}, row.typ) {
		return docMetric{}, docErrorf(i, "type %q: want counter, gauge or histogram", row.typ)
	}
	for s := range strings.SplitSeq(cells[2], seriesOr) {
		if !slices.Contains(seriesValues, s) || slices.Contains(row.series, s) {
			return docMetric{}, docErrorf(i, "series %q: want one or more of %q, joined by %q", cells[2], seriesValues, seriesOr)
		}
		row.series = append(row.series, s)
	}
	if cells[3] == "" || cells[4] == "" {
		return docMetric{}, docErrorf(i, "the meaning and alert on cells must not be empty (— for no alert)")
	}
	return row, nil
}

type docError struct {
	line int
	msg  string
}

func (e *docError) Error() string { return fmt.Sprintf("%s:%d: %s", metricsDocPath, e.line, e.msg) }

func docErrorf(i int, format string, args ...any) error {
	return &docError{line: i + 1, msg: fmt.Sprintf(format, args...)}
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

// TestMetricsDocParserIsStrict feeds the parser malformed tables: each must
// fail, so that a row the checks would skip cannot hide a metric.
func TestMetricsDocParserIsStrict(t *testing.T) {
	const good = "| `event_queue_depth{stream}` | gauge | with redis | depth | high |"
	table := func(rows ...string) string {
		return metricsTableHeader + "\n" + metricsTableRule + "\n" + strings.Join(rows, "\n") + "\n"
	}
	doc, err := parseMetricsDoc(table(good, "| `a_total` | counter | with redis or with jetstream | m | — |"))
	require.NoError(t, err)
	assert.Equal(t, []string{seriesRedis, seriesJetStream}, doc["a_total"].series)
	assert.Equal(t, []string{"stream"}, doc["event_queue_depth"].labels)

	for name, text := range map[string]string{
		"no table":            "# Metrics\n",
		"other header":        "| metric | type | meaning |\n|---|---|---|\n| `a` | gauge | m |\n",
		"no rule":             metricsTableHeader + "\n" + good + "\n",
		"no rows":             table(),
		"four cells":          table("| `a` | gauge | from start | m |"),
		"six cells":           table("| `a` | gauge | from start | m | x | y |"),
		"name not code":       table("| a | gauge | from start | m | x |"),
		"bad labels":          table("| `a{b,}` | gauge | from start | m | x |"),
		"label twice":         table("| `a{b,b}` | gauge | from start | m | x |"),
		"unknown type":        table("| `a` | summary | from start | m | x |"),
		"unknown series":      table("| `a` | gauge | sometimes | m | x |"),
		"series joined wrong": table("| `a` | gauge | with redis, with jetstream | m | x |"),
		"series twice":        table("| `a` | gauge | with redis or with redis | m | x |"),
		"empty meaning":       table("| `a` | gauge | from start |  | x |"),
		"empty alert":         table("| `a` | gauge | from start | m |  |"),
		"twice":               table(good, good),
	} {
		_, err := parseMetricsDoc(text)
		assert.Error(t, err, name)
	}
}
