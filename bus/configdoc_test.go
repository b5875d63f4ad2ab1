package bus_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/transports/memory"
)

const configDoc = "../docs/configuration.md"

// docRow is a row of a "key | default | meaning" table.
type docRow struct {
	line     int
	defaults string // the first `code` of the default cell, or "" if none
}

// docKeys reads every "| key | default | meaning |" table of the
// configuration reference.
func docKeys(t *testing.T) map[string]docRow {
	t.Helper()
	f, err := os.Open(filepath.FromSlash(configDoc))
	require.NoError(t, err)
	defer f.Close()
	rows := make(map[string]docRow)
	inTable := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case !strings.HasPrefix(line, "|"):
			inTable = false
			continue
		case strings.ReplaceAll(line, " ", "") == "|key|default|meaning|":
			inTable = true
			continue
		case !inTable || strings.HasPrefix(line, "|---"):
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		require.GreaterOrEqual(t, len(cells), 3, "%s:%d: a row needs key, default and meaning", configDoc, n)
		key, ok := codeSpan(cells[0])
		require.True(t, ok, "%s:%d: the key cell must be `key`", configDoc, n)
		if prev, dup := rows[key]; dup {
			t.Errorf("%s:%d: %s documented again (first at line %d)", configDoc, n, key, prev.line)
		}
		def, _ := codeSpan(cells[1])
		rows[key] = docRow{line: n, defaults: def}
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, rows, "no key | default | meaning table in %s", configDoc)
	return rows
}

func codeSpan(cell string) (string, bool) {
	_, rest, ok := strings.Cut(cell, "`")
	if !ok {
		return "", false
	}
	code, _, ok := strings.Cut(rest, "`")
	return code, ok
}

// configLeaves walks t's koanf-tagged fields into dotted keys and their
// values in v, skipping maps (transports, documented per transport).
func configLeaves(prefix string, v reflect.Value, out map[string]reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("koanf"), ",")
		if name == "" || name == "-" {
			continue
		}
		f := v.Field(i)
		switch {
		case f.Kind() == reflect.Map:
		case f.Kind() == reflect.Struct && f.Type() != reflect.TypeFor[time.Duration]():
			configLeaves(prefix+name+".", f, out)
		default:
			out[prefix+name] = f
		}
	}
}

func TestConfigDocCoversEveryKey(t *testing.T) {
	t.Parallel()
	rows := docKeys(t)
	leaves := make(map[string]reflect.Value)
	configLeaves("", reflect.ValueOf(bus.DefaultConfig()), leaves)
	require.NotEmpty(t, leaves)

	for key := range leaves {
		if _, ok := rows[key]; !ok {
			t.Errorf("%s: Config key %s is not documented", configDoc, key)
		}
	}
	for key, row := range rows {
		section, _, _ := strings.Cut(key, ".")
		switch section {
		case "bus", "routing", "coalescing", "consume":
			if _, ok := leaves[key]; !ok {
				t.Errorf("%s:%d: %s is not a key of Config", configDoc, row.line, key)
			}
		}
	}
	if _, ok := rows["transports.<name>.type"]; !ok {
		t.Errorf("%s: transports.<name>.type is not documented", configDoc)
	}
}

func TestConfigDocDefaults(t *testing.T) {
	t.Parallel()
	rows := docKeys(t)
	leaves := make(map[string]reflect.Value)
	configLeaves("", reflect.ValueOf(bus.DefaultConfig()), leaves)
	for key, v := range leaves {
		row, ok := rows[key]
		if !ok {
			continue // TestConfigDocCoversEveryKey reports it
		}
		want, ok := docValue(v)
		if !ok {
			continue
		}
		assert.Equal(t, want, row.defaults, "%s:%d: documented default of %s", configDoc, row.line, key)
	}
}

// docValue writes a default as the documentation does.
func docValue(v reflect.Value) (string, bool) {
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String(), true
	}
	switch v.Kind() {
	case reflect.String:
		if v.String() == "" {
			return `""`, true
		}
		return v.String(), true
	case reflect.Bool:
		return strconv.FormatBool(v.Bool()), true
	case reflect.Int, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), true
	case reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'f', -1, 64), true
	case reflect.Slice:
		if v.IsNil() {
			return "", false // unset, resolved by New: the row says how
		}
		if s, ok := v.Interface().([]string); ok {
			return "[" + strings.Join(s, ", ") + "]", true
		}
	}
	return "", false
}

func TestConfigDocMemoryTransport(t *testing.T) {
	t.Parallel()
	rows := docKeys(t)
	documented := make(map[string]bool)
	for key := range rows {
		if rest, ok := strings.CutPrefix(key, "transports.<name>."); ok && rest != "type" {
			documented[rest] = true
		}
	}
	ct := reflect.TypeFor[memory.Config]()
	fields := make(map[string]bool)
	for i := range ct.NumField() {
		name, _, _ := strings.Cut(ct.Field(i).Tag.Get("koanf"), ",")
		if name != "" && name != "-" {
			fields[name] = true
			assert.True(t, documented[name], "%s: memory transport key %s is not documented", configDoc, name)
		}
	}
	for name := range documented {
		assert.True(t, fields[name], "%s: transports.<name>.%s is not a key of memory.Config", configDoc, name)
	}
}

func TestConfigDocLegacyEnv(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.FromSlash(configDoc))
	require.NoError(t, err)
	for _, name := range []string{
		"EVENT_TRANSPORT_USE_REDIS_STREAMS", "EVENT_TRANSPORT_REDIS_PERCENTAGE",
		"EVENT_TRANSPORT_FALLBACK_TO_HTTP", "EVENT_COALESCING_ENABLED", "EVENT_COALESCING_WINDOW_MS",
	} {
		assert.Contains(t, string(doc), fmt.Sprintf("| `%s` |", name))
	}
}

// The sections that make a SWITCHYARD_ variable a key are the sections of
// Config, all of them, in order.
func TestConfigDocEnvSections(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.FromSlash(configDoc))
	require.NoError(t, err)
	var sections []string
	typ := reflect.TypeFor[bus.Config]()
	for i := range typ.NumField() {
		if name, _, _ := strings.Cut(typ.Field(i).Tag.Get("koanf"), ","); name != "" && name != "-" {
			sections = append(sections, "`"+strings.ToUpper(name)+"`")
		}
	}
	text := strings.Join(strings.Fields(string(doc)), " ")
	assert.Contains(t, text, "first segment names a section of the configuration: "+strings.Join(sections, ", ")+".")
}
