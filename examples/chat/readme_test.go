package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// goBlock is a fenced Go block of a Markdown file.
var goBlock = regexp.MustCompile("(?ms)^```go\n(.*?)^```")

// TestReadmeSnippetsCompile: every Go block of the README is a whole file
// (package clause, imports, the context it uses) that go vet accepts: a
// newcomer can paste it.
func TestReadmeSnippetsCompile(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not found")
	}
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	blocks := goBlock.FindAllStringSubmatch(string(readme), -1)
	require.NotEmpty(t, blocks)

	// Inside the module, so that its packages and dependencies resolve;
	// under testdata, so that no other go command of the module sees it.
	if _, err := os.Stat("testdata"); os.IsNotExist(err) {
		require.NoError(t, os.Mkdir("testdata", 0o755))
		t.Cleanup(func() { _ = os.Remove("testdata") })
	}
	dir, err := os.MkdirTemp("testdata", "readme-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	var pkgs, tests []string
	for i, b := range blocks {
		src := b[1]
		require.True(t, strings.HasPrefix(src, "package "), "README Go block %d does not start with a package clause:\n%s", i+1, src)
		pkg := filepath.Join(dir, fmt.Sprintf("snippet%d", i+1))
		require.NoError(t, os.Mkdir(pkg, 0o755))
		name := "snippet.go"
		if strings.Contains(src, "\nfunc Test") {
			name = "snippet_test.go"
			tests = append(tests, "./"+filepath.ToSlash(pkg))
		}
		require.NoError(t, os.WriteFile(filepath.Join(pkg, name), []byte(src), 0o644))
		pkgs = append(pkgs, "./"+filepath.ToSlash(pkg))
	}
	cmd := exec.Command(goCmd, append([]string{"vet"}, pkgs...)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go vet of the README's Go blocks:\n%s", out)
	// A block that is a test is run too: it is there to be copied.
	for _, pkg := range tests {
		cmd := exec.Command(goCmd, "test", "-count=1", pkg)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go test of the README's Go block %s:\n%s", pkg, out)
	}
}
