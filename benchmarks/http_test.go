package benchmarks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/bus"
	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// BenchmarkHTTP compares the bus on its HTTP transport with raw net/http
// sending the very same requests to the same loopback hub, in the same run:
// the targets are the bus's throughput ≥ 95% of raw and its p99 latency
// ≤ 1.1× raw, from 1, 8 and 64 concurrent publishers.
//
//   - client=rawrt (the reference) does what the transport does with none
//     of its work: http.Transport.RoundTrip called directly, with a
//     context.WithTimeout of 2 s per request (the transport's default
//     timeout), on a clone of http.DefaultTransport with compression off
//     and 64 idle connections per host (as the transport's), then drain and
//     close the response body. Its requests are the transport's own,
//     captured once per key before the timer starts: same URL, headers,
//     body.
//   - client=publisher is the HTTP transport's Publisher alone (defaults:
//     CloudEvents binary, 2 s timeout, retries, keep-alive), which maps each
//     message to its request in the timed loop.
//   - client=bus is a whole bus with the HTTP transport as its baseline:
//     PublishSync of one event made with bus.NewMessage, which returns once
//     the hub has answered.
//
// The hub drains each body and answers 204. One op is one message; every
// op's latency, from the call to its return, is kept; p50-µs, p99-µs and
// p999-µs are over all of them, msgs/s over the timed wall time. The
// clients run in a random order, drawn afresh in each run.
func BenchmarkHTTP(b *testing.B) {
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hub.Close()
	cfg := httptransport.Config{URL: hub.URL + "/api/v1/events/{topic}"}
	url := hub.URL + "/api/v1/events/" + topic
	msgs := make([]*message.Message, keyCount)
	for i := range msgs {
		msgs[i] = newEvent(i)
	}
	type client struct {
		name string
		run  func(b *testing.B, publishers int)
	}
	clients := []client{
		{"rawrt", func(b *testing.B, publishers int) {
			requests := captureRequests(b, cfg, msgs)
			transport := http.DefaultTransport.(*http.Transport).Clone()
			transport.MaxIdleConnsPerHost = httptransport.DefaultMaxIdleConnsPerHost
			transport.DisableCompression = true
			defer transport.CloseIdleConnections()
			benchHTTPClient(b, publishers, func(i int) error {
				r := requests[i%keyCount]
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(r.body))
				if err != nil {
					return err
				}
				req.Header = r.header
				resp, err := transport.RoundTrip(req)
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return nil
			})
		}},
		{"publisher", func(b *testing.B, publishers int) {
			pub, err := httptransport.NewPublisher(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = pub.Close() }()
			benchHTTPClient(b, publishers, func(i int) error {
				return pub.Publish(topic, msgs[i%keyCount])
			})
		}},
		{"bus", func(b *testing.B, publishers int) {
			bs := runningBus(b, httpBusConfig(cfg.URL), topic, nil)
			ctx := context.Background()
			benchHTTPClient(b, publishers, func(i int) error {
				return bs.PublishSync(ctx, topic, newEvent(i))
			})
		}},
	}
	for _, publishers := range publisherCounts {
		b.Run(publishersName(publishers), func(b *testing.B) {
			rand.Shuffle(len(clients), func(i, j int) { clients[i], clients[j] = clients[j], clients[i] })
			for _, c := range clients {
				b.Run("client="+c.name, func(b *testing.B) { c.run(b, publishers) })
			}
		})
	}
}

// httpBusConfig is the default configuration with an HTTP transport "http"
// posting to url as the baseline, and no inbound transport.
func httpBusConfig(url string) bus.Config {
	cfg := bus.DefaultConfig()
	cfg.Transports["http"] = map[string]any{"type": "http", "url": url}
	cfg.Routing.Baseline = "http"
	cfg.Consume.From = []string{}
	return cfg
}

type capturedRequest struct {
	header http.Header
	body   []byte
}

// captureRequests publishes msgs with a Publisher configured as cfg (but
// for its URL) to a server that keeps each request's headers and body.
func captureRequests(b *testing.B, cfg httptransport.Config, msgs []*message.Message) []capturedRequest {
	b.Helper()
	var mu sync.Mutex
	var captured capturedRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := r.Header.Clone()
		// Set by net/http from the request, not by its header map.
		h.Del("User-Agent")
		h.Del("Content-Length")
		mu.Lock()
		captured = capturedRequest{header: h, body: body}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	cfg.URL = srv.URL + "/api/v1/events/{topic}"
	pub, err := httptransport.NewPublisher(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = pub.Close() }()
	requests := make([]capturedRequest, len(msgs))
	for i, m := range msgs {
		if err := pub.Publish(topic, m); err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		requests[i] = captured
		mu.Unlock()
	}
	return requests
}

// benchHTTPClient runs b.N calls of send from publishers goroutines, after a
// warm-up that opens their connections, and reports msgs/s and the p50 and
// p99 latencies of the calls.
func benchHTTPClient(b *testing.B, publishers int, send func(i int) error) {
	run := func(n int, record bool) [][]time.Duration {
		var next atomic.Int64
		var failed atomic.Pointer[error]
		lat := make([][]time.Duration, publishers)
		var wg sync.WaitGroup
		for g := range publishers {
			if record {
				lat[g] = make([]time.Duration, 0, n/publishers+1)
			}
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= n || failed.Load() != nil {
						return
					}
					start := time.Now()
					if err := send(i); err != nil {
						failed.CompareAndSwap(nil, &err)
						return
					}
					if record {
						lat[g] = append(lat[g], time.Since(start))
					}
				}
			})
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			b.Fatal(*err)
		}
		return lat
	}
	run(publishers*50, false)
	startClean()
	b.ReportAllocs()
	cpuStart, cpuOK := httpProcessCPU()
	b.ResetTimer()
	lat := run(b.N, true)
	b.StopTimer()
	if cpuEnd, ok := httpProcessCPU(); ok && cpuOK {
		b.ReportMetric(float64((cpuEnd-cpuStart).Microseconds())/float64(b.N), "cpu-µs/op")
	}

	all := slices.Concat(lat...)
	slices.Sort(all)
	quantile := func(q float64) float64 {
		return float64(all[min(len(all)-1, int(q*float64(len(all))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(quantile(0.50), "p50-µs")
	b.ReportMetric(quantile(0.99), "p99-µs")
	b.ReportMetric(quantile(0.999), "p999-µs")
}

// httpProcessCPU is the user and system CPU time of the process so far, from
// /proc/self/stat, in clock ticks of 10 ms (USER_HZ is 100 on every Linux
// architecture Go supports); false where there is no such file.
func httpProcessCPU() (time.Duration, bool) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// The fields after "(comm) ": state ppid pgrp session tty_nr tpgid flags
	// minflt cminflt majflt cmajflt utime stime …
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}
