package main

import (
	"fmt"
	"strings"
)

// A suite is one `go test -bench` command: the benchmarks of one table.
type suite struct {
	name  string // the table it feeds
	bench string // the -bench pattern
	// benchtime and count in the full and the quick mode.
	benchtime, quickBenchtime string
	count, quickCount         int
	// guard is the -bench pattern of the guard's run; empty leaves the
	// suite out of it.
	guard string
}

var suites = []suite{
	{
		name: "inprocess", bench: "^BenchmarkInProcess$",
		benchtime: "100000x", count: 6, quickBenchtime: "20000x", quickCount: 5,
		guard: "^BenchmarkInProcess$/^publishers=8$",
	},
	{
		name: "redis", bench: "^BenchmarkRedis$/^(Publish|Consume|EndToEnd)$",
		benchtime: "1s", count: 5, quickBenchtime: "200ms", quickCount: 3,
		guard: "^BenchmarkRedis$/^(Publish|EndToEnd)$/^publishers=8$",
	},
	{
		name: "latency", bench: "^BenchmarkRedis$/^Latency$",
		benchtime: "3s", count: 3, quickBenchtime: "500ms", quickCount: 3,
		guard: "^BenchmarkRedis$/^Latency$/^rate=5000$",
	},
	{
		name: "jetstream", bench: "^BenchmarkJetStream$",
		benchtime: "20000x", count: 5, quickBenchtime: "5000x", quickCount: 3,
		// Not in the guard: its ratios move with the machine's load by
		// more than the guard's factor (nats.go's async publish keeps
		// thousands of events in flight, the bus 64 and a synchronous
		// caller one, so load lengthens their round trips, not its): the
		// transport's synchronous Publish against nats.go's async publish
		// read from about 0.4 on an idle machine to 1 under load.
	},
	{
		name: "http", bench: "^BenchmarkHTTP$",
		benchtime: "20000x", count: 5, quickBenchtime: "3000x", quickCount: 5,
		guard: "^BenchmarkHTTP$/^publishers=(1|8)$",
	},
	{
		name: "delivery", bench: "^BenchmarkDelivery$",
		benchtime: "5s", count: 3, quickBenchtime: "1s", quickCount: 1,
	},
}

// guarded reports whether the suite named name runs in the guard.
func guarded(name string) bool {
	for _, s := range suites {
		if s.name == name {
			return s.guard != ""
		}
	}
	return false
}

// rounds is how many times s runs in mode. Each round is a process of its
// own that runs every benchmark of s once, so that a bus and its reference
// take turns: a change in the machine's load falls on both (go test's
// -count would run each benchmark's samples back to back instead).
func (s suite) rounds(mode string) int {
	if mode == modeFull {
		return s.count
	}
	return s.quickCount
}

// flags are the test flags of one round of s in mode, as name, value
// pairs (an empty value for a boolean flag).
func (s suite) flags(mode string) [][2]string {
	bench, benchtime := s.bench, s.benchtime
	if mode != modeFull {
		benchtime = s.quickBenchtime
	}
	if mode == modeGuard {
		bench = s.guard
	}
	return [][2]string{{"run", "^$"}, {"bench", bench}, {"benchmem", ""},
		{"benchtime", benchtime}, {"count", "1"}, {"timeout", "30m"}}
}

// testArgs are the test binary's arguments of one round of s in mode.
func (s suite) testArgs(mode string) []string {
	var args []string
	for _, f := range s.flags(mode) {
		args = append(args, "-test."+f[0])
		if f[1] != "" {
			args = append(args, f[1])
		}
	}
	return args
}

// command is one round of s as a user types it, with the number of rounds.
func (s suite) command(mode string) string {
	args := []string{"go", "test"}
	for _, f := range s.flags(mode) {
		args = append(args, "-"+f[0])
		switch {
		case f[1] == "":
		case strings.ContainsAny(f[1], "^$|()*"):
			args = append(args, "'"+f[1]+"'")
		default:
			args = append(args, f[1])
		}
	}
	return fmt.Sprintf("%s ./benchmarks/   # %d rounds", strings.Join(args, " "), s.rounds(mode))
}

const (
	modeFull  = "full"
	modeQuick = "quick"
	modeGuard = "guard"
)
