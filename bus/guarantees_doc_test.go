package bus_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGuaranteesDocNamesRealTests: every promise of docs/guarantees.md
// names the tests that prove it. Each name must be a test or fuzz function
// of the repository, and each TestChaos/… subtest one the chaos suite runs,
// so a renamed or deleted test cannot leave a promise unproven.
func TestGuaranteesDocNamesRealTests(t *testing.T) {
	doc, err := os.ReadFile("../docs/guarantees.md")
	require.NoError(t, err)
	funcs := map[string]bool{}
	var chaos strings.Builder
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)\w+)\(`)
	require.NoError(t, filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
			funcs[m[1]] = true
		}
		if strings.HasPrefix(filepath.Base(path), "chaos_") {
			chaos.Write(src)
		}
		return nil
	}))

	setting := regexp.MustCompile(`=(on|off|lagging|idle)`)
	named := regexp.MustCompile("`((?:Test|Fuzz)[A-Za-z0-9_]*)(/[^`]*)?`")
	found := 0
	for _, m := range named.FindAllStringSubmatch(string(doc), -1) {
		found++
		name, sub := m[1], strings.TrimPrefix(m[2], "/")
		assert.True(t, funcs[name], "docs/guarantees.md names %s, which no test file declares", name)
		if name != "TestChaos" || sub == "" {
			continue
		}
		// A family (network/redis/…) or one subtest: its fixed part must
		// be a subtest name the suite runs; kill9's names are formatted
		// from their settings' values.
		prefix, _, _ := strings.Cut(sub, "…")
		prefix = setting.ReplaceAllString(prefix, "=%s")
		assert.True(t, strings.Contains(chaos.String(), `"`+prefix),
			"docs/guarantees.md names TestChaos/%s, which the chaos suite does not run", sub)
	}
	require.Greater(t, found, 20, "the page names the tests behind its promises")
}
