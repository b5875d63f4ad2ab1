// Command report runs switchyard's benchmarks and writes the performance
// report: docs/performance.md, with the chart docs/images/perf-latency.png
// and the figures the CI guard compares with (benchmarks/report/baseline.json).
// Run it from the repository root:
//
//	go run ./benchmarks/report          # every benchmark, about 15 minutes on 2 cores
//	go run ./benchmarks/report -quick   # the same, briefly: a report to check the harness
//	go run ./benchmarks/report -guard   # the targets' benchmarks, briefly; fails when a figure
//	                                    # is worse than half (or twice) the report's
//
// The benchmarks start their own redis-server (it must be installed), a
// NATS server with JetStream inside the benchmark process and a loopback
// HTTP hub. Each suite's raw `go test -bench` output is kept in
// bench.txt; -from reads it back instead of running the benchmarks.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// testBinary is where the benchmarks' test binary is built, in the
// repository root (ignored by git, as the profiles are).
const testBinary = "bench.test"

func main() {
	quick := flag.Bool("quick", false, "run each benchmark briefly")
	guardMode := flag.Bool("guard", false, "run the targets' benchmarks briefly and compare with -baseline; write nothing")
	out := flag.String("out", "docs/performance.md", "the report to write")
	chart := flag.String("chart", "docs/images/perf-latency.png", "the chart to write")
	base := flag.String("baseline", "benchmarks/report/baseline.json", "the figures the guard compares with")
	raw := flag.String("raw", "", "where the benchmarks' raw output goes (default bench.txt; for -guard, a file in the temporary directory)")
	from := flag.String("from", "", "read results from this file instead of running the benchmarks")
	flag.Parse()
	mode := modeFull
	switch {
	case *guardMode:
		mode = modeGuard
	case *quick:
		mode = modeQuick
	}
	if *raw == "" {
		*raw = "bench.txt"
		if mode == modeGuard {
			// The guard leaves the report's raw output alone.
			*raw = filepath.Join(os.TempDir(), "switchyard-bench-guard.txt")
		}
	}
	if err := run(mode, *out, *chart, *base, *raw, *from); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(mode, out, chart, basePath, raw, from string) error {
	start := time.Now()
	rs := newResults()
	commands := map[string]string{}
	for _, s := range suites {
		commands[s.name] = s.command(mode)
	}
	if from != "" {
		f, err := os.Open(from)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := rs.read(f, from); err != nil {
			return err
		}
	} else {
		rawFile, err := os.Create(raw)
		if err != nil {
			return err
		}
		defer rawFile.Close()
		// One test binary for every round: rounds then cost no build.
		build := exec.Command("go", "test", "-c", "-o", testBinary, "./benchmarks/")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building the benchmarks: %w", err)
		}
		bin, err := filepath.Abs(testBinary)
		if err != nil {
			return err
		}
		for _, s := range suites {
			if mode == modeGuard && s.guard == "" {
				continue
			}
			fmt.Fprintf(os.Stderr, "report: %s\n", s.command(mode))
			for range s.rounds(mode) {
				var buf bytes.Buffer
				cmd := exec.Command(bin, s.testArgs(mode)...)
				cmd.Dir = "benchmarks" // where go test runs it
				cmd.Stdout = io.MultiWriter(&buf, rawFile, &progress{})
				cmd.Stderr = os.Stderr
				if err := cmd.Run(); err != nil {
					return fmt.Errorf("%s: %w", s.name, err)
				}
				if err := rs.read(&buf, s.name); err != nil {
					return err
				}
			}
		}
	}
	outs := measure(rs)
	if mode == modeGuard {
		b, err := readBaseline(basePath)
		if err != nil {
			return err
		}
		lines, ok := guard(outs, b)
		for _, l := range lines {
			fmt.Println(l)
		}
		fmt.Printf("guard: %s\n", time.Since(start).Round(time.Second))
		if !ok {
			return errors.New("a figure is worse than its guard limit: see the lines marked FAIL")
		}
		return nil
	}
	measured := time.Now()
	if from != "" {
		if fi, err := os.Stat(from); err == nil {
			measured = fi.ModTime()
		}
	}
	r := &report{env: environment(rs, mode, measured), rs: rs, outs: outs, commands: commands}
	r.prof = busProfile(mode, from != "")
	rel, err := filepath.Rel(filepath.Dir(out), chart)
	if err != nil {
		return err
	}
	r.chart = filepath.ToSlash(rel)
	if err := os.MkdirAll(filepath.Dir(chart), 0o755); err != nil {
		return err
	}
	switch err := writeChart(rs, chart); {
	case errors.Is(err, errNoSamples):
		// -from a run without the delivery suite: the rest still reports.
		fmt.Fprintf(os.Stderr, "report: no delivery latencies: %s left as it was\n", chart)
	case err != nil:
		return fmt.Errorf("chart: %w", err)
	}
	if err := os.WriteFile(out, []byte(r.markdown()), 0o644); err != nil {
		return err
	}
	if err := writeBaseline(basePath, outs); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "report: wrote %s, %s and %s in %s\n", out, chart, basePath, time.Since(start).Round(time.Second))
	return nil
}

// progress echoes benchmark result lines to stderr as they complete.
type progress struct{ partial []byte }

func (w *progress) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.partial[:i+1])
		w.partial = w.partial[i+1:]
		if strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "---") {
			fmt.Fprint(os.Stderr, line)
		}
	}
}

// environment describes the machine, Go and the dependencies compared.
func environment(rs *results, mode string, measured time.Time) env {
	e := env{date: measured.UTC().Format("2006-01-02 15:04 UTC")}
	cpu := strings.Join(strings.Fields(rs.config["cpu"]), " ")
	if cpu == "" {
		cpu = "unknown CPU"
	}
	e.machine = fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s, %s/%s", cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0), memTotal(), runtime.GOOS, runtime.GOARCH)
	e.goVersion = strings.TrimPrefix(output("go", "env", "GOVERSION"), "go")
	mods := output("go", "list", "-m", "-f", "{{.Path}} {{.Version}}",
		"github.com/ThreeDotsLabs/watermill", "github.com/ThreeDotsLabs/watermill-redisstream", "github.com/redis/go-redis/v9",
		"github.com/nats-io/nats.go", "github.com/nats-io/nats-server/v2")
	e.deps = strings.Join(strings.Split(strings.TrimSpace(mods), "\n"), ", ")
	e.redis = "redis-server " + versionField(output("redis-server", "--version"))
	e.mode = "full run"
	if mode != modeFull {
		e.mode = "quick run (`-quick`: few, short runs, figures indicative only)"
	}
	return e
}

func output(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// versionField picks v=X.Y.Z out of `redis-server --version`.
func versionField(s string) string {
	for _, f := range strings.Fields(s) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return v
		}
	}
	return s
}

func memTotal() string {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return "unknown memory"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int64
		if _, err := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); err == nil {
			return fmt.Sprintf("%d GB", (kb+1<<19)>>20)
		}
	}
	return "unknown memory"
}

// busProfile profiles the bus on memory with 8 publishers (or, with
// reuse, reads the profiles an earlier run left) and returns the top of its
// CPU and allocation profiles, or nothing if that fails.
func busProfile(mode string, reuse bool) profile {
	if reuse {
		return readProfile()
	}
	n := "100000x"
	if mode != modeFull {
		n = "20000x"
	}
	fmt.Fprintln(os.Stderr, "report: profiling the bus on memory")
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkInProcess$/^publishers=8$/^system=bus$",
		"-benchtime", n, "-count", "1", "-cpuprofile", "bench-cpu.prof", "-memprofile", "bench-mem.prof",
		"-o", testBinary, "./benchmarks/")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "report: profile:", err)
		return profile{}
	}
	return readProfile()
}

func readProfile() profile {
	p := profile{
		cpu:    ownFunctions(pprofTop("-cum", "-nodecount=100", testBinary, "bench-cpu.prof"), 4),
		allocs: pprofTop("-nodecount=4", "-sample_index=alloc_objects", testBinary, "bench-mem.prof"),
	}
	top := pprofTop("-nodecount=60", "-sample_index=alloc_objects", testBinary, "bench-mem.prof")
	p.routerAllocs = allocShare(top, 1, func(fn string) bool {
		return strings.Contains(fn, "watermill/message.(*handler)") || strings.HasPrefix(fn, "context.WithValue")
	})
	p.copyAllocs = allocShare(top, 4, func(fn string) bool {
		return strings.HasPrefix(fn, "github.com/switchyard-go/switchyard/internal/queue.(*entry).message")
	})
	return p
}

// ownFunctions keeps the header of a `pprof -top` listing and its first n
// lines of switchyard's and Watermill's functions (not the runtime's, nor
// the benchmark's own).
func ownFunctions(top []string, n int) []string {
	if len(top) == 0 {
		return nil
	}
	out := top[:1]
	for _, l := range top[1:] {
		if len(out) > n {
			break
		}
		if (strings.Contains(l, "switchyard-go/switchyard/") || strings.Contains(l, "ThreeDotsLabs/watermill")) &&
			!strings.Contains(l, "/benchmarks.") {
			out = append(out, l)
		}
	}
	return out
}

// allocShare sums a percentage column (1, flat%, or 4, cum%) of the lines
// of a `pprof -top` listing whose function match picks.
func allocShare(top []string, col int, match func(fn string) bool) float64 {
	var sum float64
	for _, l := range top {
		f := strings.Fields(l)
		if len(f) < 6 || !match(strings.Join(f[5:], " ")) {
			continue
		}
		var pct float64
		if _, err := fmt.Sscanf(f[col], "%f%%", &pct); err == nil {
			sum += pct
		}
	}
	return sum
}

// pprofTop is `go tool pprof -top` from its column header on.
func pprofTop(args ...string) []string {
	out := output("go", append([]string{"tool", "pprof", "-top"}, args...)...)
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.Contains(l, "flat%") {
			return lines[i:]
		}
	}
	return nil
}
