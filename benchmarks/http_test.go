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

	httptransport "github.com/switchyard-go/switchyard/transports/http"
)

// BenchmarkHTTPPublish compares the HTTP transport's Publisher with raw
// net/http sending the very same requests to the same loopback server, in
// the same run: the targets are publisher throughput ≥ 95% of raw
// and p99 latency ≤ 1.1× raw, from 1 and from 8 concurrent publishers.
//
//   - client=rawrt (the strict reference) does what the Publisher does with
//     none of its work: http.Transport.RoundTrip called directly (as the
//     Publisher calls it), with a context.WithTimeout of 2 s per request (as
//     the Publisher's default timeout), on a clone of http.DefaultTransport
//     with compression off and 64 idle connections per host (as the
//     Publisher's), then drain and close the response body. Its requests are
//     the Publisher's own, captured from a server once per key before the
//     timer starts: same URL, headers, body.
//   - client=raw is what a careful hand-written client does with the same
//     requests: one http.Client on the same kind of transport, a 2 s
//     Client.Timeout, Client.Do (which copies each request's headers for
//     redirects).
//   - client=publisher is httptransport.NewPublisher with the format and
//     otherwise its defaults (2 s timeout, retries, keep-alive): it maps
//     each message to its request (CloudEvents attributes, percent-encoding,
//     URL template) in the timed loop.
//
// The three clients run in a random order, drawn afresh in each process, so
// that a change in the machine's load does not always fall on the same one;
// run the benchmark several times with -count 1 rather than once with
// -count (which runs each client's rounds back to back), and compare the
// medians with benchstat (docs/performance.md, "HTTP").
//
// So publisher ÷ rawrt is the Publisher's own cost, in each of the three
// formats (for cloudevents-structured it includes writing the JSON body,
// which rawrt replays); format=cloudevents-binary (the default) against
// format=raw of the same client shows what the CloudEvents headers cost on
// the wire. The server drains each body and answers 204. One op is one
// message; messages carry the bus's metadata and are made once per key
// (msg=premade of BenchmarkEndToEnd). Every op's latency is kept; p50-µs
// and p99-µs are over all of them, msgs/s over the timed wall time.
// cpu-µs/op is the CPU time of the whole process (client and server, user
// and system) per message, read from /proc/self/stat (Linux; omitted
// elsewhere): unlike wall time it barely moves when other processes load
// the machine, and with identical requests the server's share is the same
// for every client.
func BenchmarkHTTPPublish(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	urlTemplate := srv.URL + "/api/v1/events/{topic}"
	url := srv.URL + "/api/v1/events/" + topic
	msgs := make([]*message.Message, keyCount)
	for i := range msgs {
		msgs[i] = httpBusMessage(i)
	}
	newTransport := func() *http.Transport {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = httptransport.DefaultMaxIdleConnsPerHost
		t.DisableCompression = true
		return t
	}
	type client struct {
		name string
		run  func(b *testing.B, cfg httptransport.Config, publishers int)
	}
	clients := []client{
		{"rawrt", func(b *testing.B, cfg httptransport.Config, publishers int) {
			requests := captureRequests(b, cfg, msgs)
			transport := newTransport()
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
		{"raw", func(b *testing.B, cfg httptransport.Config, publishers int) {
			requests := captureRequests(b, cfg, msgs)
			transport := newTransport()
			defer transport.CloseIdleConnections()
			client := &http.Client{Transport: transport, Timeout: 2 * time.Second}
			benchHTTPClient(b, publishers, func(i int) error {
				r := requests[i%keyCount]
				req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(r.body))
				if err != nil {
					return err
				}
				req.Header = r.header
				resp, err := client.Do(req)
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
		{"publisher", func(b *testing.B, cfg httptransport.Config, publishers int) {
			pub, err := httptransport.NewPublisher(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = pub.Close() }()
			benchHTTPClient(b, publishers, func(i int) error {
				return pub.Publish(topic, msgs[i%keyCount])
			})
		}},
	}

	for _, publishers := range []int{1, 8} {
		b.Run(fmt.Sprintf("publishers=%d", publishers), func(b *testing.B) {
			for _, format := range []httptransport.Format{httptransport.FormatBinary, httptransport.FormatStructured, httptransport.FormatRaw} {
				cfg := httptransport.Config{URL: urlTemplate, Format: format}
				b.Run("format="+string(format), func(b *testing.B) {
					rand.Shuffle(len(clients), func(i, j int) { clients[i], clients[j] = clients[j], clients[i] })
					for _, c := range clients {
						b.Run("client="+c.name, func(b *testing.B) { c.run(b, cfg, publishers) })
					}
				})
			}
		})
	}
}

// httpBusMessage is an event as bus.NewMessage makes it.
func httpBusMessage(key int) *message.Message {
	m := newKeyedMessage(key)
	m.Metadata.Set("event_type", "chat_message")
	m.Metadata.Set("published_at", "2026-01-02T03:04:05.123456789Z")
	m.Metadata.Set("transport", "http")
	return m
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
