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
		benchtime: "100000x", count: 6, quickBenchtime: "20000x", quickCount: 3,
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
		name: "http", bench: "^BenchmarkHTTP$",
		benchtime: "20000x", count: 5, quickBenchtime: "3000x", quickCount: 3,
		guard: "^BenchmarkHTTP$/^publishers=(1|8)$",
	},
	{
		name: "delivery", bench: "^BenchmarkDelivery$",
		benchtime: "5s", count: 3, quickBenchtime: "1s", quickCount: 1,
	},
}

// args are the `go test` arguments of s in mode.
func (s suite) args(mode string) []string {
	bench, benchtime, count := s.bench, s.benchtime, s.count
	if mode != modeFull {
		benchtime, count = s.quickBenchtime, s.quickCount
	}
	if mode == modeGuard {
		bench = s.guard
	}
	return []string{"test", "-run", "^$", "-bench", bench, "-benchmem",
		"-benchtime", benchtime, "-count", fmt.Sprint(count), "-timeout", "30m", "./benchmarks/"}
}

// command is s's command as a user types it.
func (s suite) command(mode string) string {
	args := s.args(mode)
	for i, a := range args {
		if strings.ContainsAny(a, "^$|()*") {
			args[i] = "'" + a + "'"
		}
	}
	return "go " + strings.Join(args, " ")
}

const (
	modeFull  = "full"
	modeQuick = "quick"
	modeGuard = "guard"
)
