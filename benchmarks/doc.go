// Package benchmarks holds switchyard's side-by-side benchmarks. It has no
// API: everything lives in _test.go files, run with
//
//	go test -run '^$' -bench . -benchmem -count 6 -benchtime 200000x ./benchmarks/ | tee bench.txt
//	go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da bench.txt
//
// (make bench BENCHTIME=200000x does both). Every target is a ratio against
// a reference that runs in the same process and the same `go test -bench`
// run, so the numbers compare like with like on whatever machine runs them:
// Watermill's gochannel for the memory transport, the memory transport for
// the whole bus. Read them with benchstat -col /transport or -col /system;
// docs/performance.md records the figures, the command and the machine.
//
// One benchmark op is one message, so allocs/op and B/op are per message,
// counted over every goroutine (publishers, transport, consumer) while the
// timer runs. Sub-benchmark names are key=value pairs for benchstat.
package benchmarks
