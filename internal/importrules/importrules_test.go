package importrules

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/switchyard-go/switchyard"

// pkg is what this test reads of `go list -json`.
type pkg struct {
	ImportPath string
	Imports    []string
}

// TestImportRules fails when a package's direct (non-test) imports break the
// one-way dependencies: transports/<name>, middleware and coalesce are plain
// Watermill components that never import bus, and bus and bus/bustest reach
// transports only through the registry package.
func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages of %s; the test would check nothing", len(pkgs), module)
	}
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			if why := broken(p.ImportPath, imp); why != "" {
				t.Errorf("%s imports %s: %s", rel(p.ImportPath), rel(imp), why)
			}
		}
	}
}

// TestBroken checks the rules themselves on made-up edges, so a rule that
// matches nothing cannot pass unnoticed.
func TestBroken(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		broken   bool
	}{
		{"transports/redisstream", "bus", true},
		{"transports/http", "bus/bustest", true},
		{"middleware", "bus", true},
		{"coalesce", "bus", true},
		{"bus", "transports/memory", true},
		{"bus", "transports/all", true},
		{"bus/bustest", "transports/memory", true},
		{"bus", "transports", false},
		{"bus", "internal/queue", false},
		{"bus", "middleware", false},
		{"transports/memory", "transports", false},
		{"transports/memory", "internal/queue", false},
		{"transports/redisstream/redistest", "transports", false},
		{"examples/chat", "transports/all", false},
		{"examples/chat", "bus", false},
	} {
		got := broken(module+"/"+tc.from, module+"/"+tc.to) != ""
		if got != tc.broken {
			t.Errorf("%s → %s: broken = %v, want %v", tc.from, tc.to, got, tc.broken)
		}
	}
}

// broken says which rule the import of imp by from breaks, or "".
func broken(from, imp string) string {
	from, imp = rel(from), rel(imp)
	switch {
	case within(from, "transports") && from != "transports",
		within(from, "middleware"), within(from, "coalesce"):
		if within(imp, "bus") {
			return "transports, middleware and coalesce never import the bus"
		}
	case within(from, "bus"):
		if within(imp, "transports") && imp != "transports" {
			return "the bus reaches transports only through the registry package"
		}
	}
	return ""
}

// within reports whether path is dir or below it.
func within(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

// rel strips the module path; a path outside the module is left whole, so
// it matches no rule.
func rel(path string) string {
	if path == module {
		return "."
	}
	if r, ok := strings.CutPrefix(path, module+"/"); ok {
		return r
	}
	return path
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs
		}
		if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
}
