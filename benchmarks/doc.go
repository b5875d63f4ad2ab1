// Package benchmarks holds switchyard's side-by-side benchmarks: each
// measures the bus and its reference in the same run, so that a ratio
// compares like with like on whatever machine runs them. It has no API:
// everything lives in _test.go files, and the command in report runs them
// and writes docs/performance.md (make bench).
//
//   - BenchmarkInProcess: the bus on memory against Watermill's Router over
//     gochannel in the same shape, the memory transport alone and a bare
//     channel.
//   - BenchmarkRedis: the bus on Redis Streams against go-redis (one XADD
//     at a time and pipelined) and watermill-redisstream: publish,
//     end to end, and latency at fixed rates.
//   - BenchmarkHTTP: the bus on HTTP against raw net/http sending the same
//     requests to the same hub.
//   - BenchmarkDelivery: latency from Publish to a hub-like consumer over
//     each path at one fixed rate.
//
// One benchmark op is one event, so allocs/op and B/op are per event,
// counted over every goroutine while the timer runs. Sub-benchmark names
// are key=value pairs for benchstat (-col /system, /impl, /client, /path).
// The Redis benchmarks start their own redis-server on a free port
// (transports/redisstream/redistest) and are skipped without one, except
// in CI.
package benchmarks
