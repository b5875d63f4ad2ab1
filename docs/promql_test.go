package docs_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

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
		"switchyard_redis_dead_lettered_total", "switchyard_jetstream_dead_lettered_total", "switchyard_config_reloads_total",
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
	// The alerts operators need: every dead letter and loss, backlogs,
	// failing and slow transports.
	for _, name := range []string{
		"switchyard_fallbacks_total", "switchyard_circuit_breaker_state", "switchyard_ingress_queue_depth",
		"event_queue_depth", "switchyard_ingress_dead_lettered_total", "switchyard_redis_dead_lettered_total",
		"switchyard_jetstream_dead_lettered_total",
		"event_publish_duration_seconds", "event_delivery_latency_seconds", "switchyard_config_reloads_total",
		"switchyard_redis_group_recreated_total", "switchyard_redis_lost_entries_total",
	} {
		assert.True(t, alerted[name], "an alert on %s", name)
	}
}
