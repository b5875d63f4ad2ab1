package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

// chromiumPath finds Debian's chromium. The browser tests skip without
// it, except in CI (CI=true), where .ci/run installs it and a missing
// browser fails them.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "chromium", "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found; CI must install it (apt-get install -y chromium)")
	}
	t.Skip("chromium not found (apt-get install chromium): the browser tests are skipped")
	return ""
}

// newBrowser starts a headless chromium with a profile of its own; the
// returned context is its first tab. It stops with the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 760),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the browser's process to end
	})
	// Starts the browser.
	require.NoError(t, chromedp.Do(browser))
	return browser
}

// newTab opens a tab of browser on url.
func newTab(t *testing.T, browser context.Context, url string) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(url)))
	return tab
}

// stepTimeout bounds each step of a browser test: each waits for a
// condition of the page, never for a fixed time.
const stepTimeout = 20 * time.Second

// step runs actions in tab within stepTimeout, failing the test with what
// it was waiting for.
func step(t *testing.T, tab context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, actions...), what)
}

// text returns the text of the element sel selects in tab, once visible.
func text(t *testing.T, tab context.Context, sel string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err, "the text of %s", sel)
	return s
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// rolloutConfig is the shipped rollout.yaml with the addresses of this
// test: the Redis at redisURL (the memory transport when empty), the
// stand-in hub's HTTP receiver on hubPort.
func rolloutConfig(t *testing.T, redisURL string, hubPort int) string {
	t.Helper()
	data, err := os.ReadFile("rollout.yaml")
	require.NoError(t, err)
	text := string(data)
	hub := "127.0.0.1:" + strconv.Itoa(hubPort)
	for _, r := range []struct{ old, new string }{
		{"url: redis://127.0.0.1:6380/0", "url: " + redisURL},
		{"url: http://127.0.0.1:8001/", "url: http://" + hub + "/"},
		{"listen: 127.0.0.1:8001", "listen: " + hub},
	} {
		require.Contains(t, text, r.old, "rollout.yaml changed: update this test")
		text = strings.Replace(text, r.old, r.new, 1)
	}
	if redisURL == "" {
		// Without Redis, the candidate is the in-process memory transport.
		redis := regexp.MustCompile(`(?s)\n  redis:\n.*?\n  http:\n`)
		require.Regexp(t, redis, text)
		text = redis.ReplaceAllString(text, "\n  http:\n")
		text = strings.Replace(text, "candidate: redis", "candidate: memory", 1)
		text = strings.Replace(text, "from: [redis, http]", "from: [memory, http]", 1)
	}
	return text
}

// writeConfig replaces the file at path whole, as editors do, so that
// the watcher never reads it half written.
func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(text), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// startService runs the example on config until the test ends.
func startService(t *testing.T, config string) (addr string, logs *syncBuffer) {
	t.Helper()
	env := map[string]string{"ADDR": "127.0.0.1:0"}
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-config", config}, func(k string) string { return env[k] }, logs, ready)
	}()
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	case <-time.After(15 * time.Second):
		cancel()
		t.Fatal("not ready")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Error("run did not return after its context ended")
		}
	})
	return addr, logs
}

// TestBrowser drives the page in headless chromium, two tabs on one
// conversation, with the rollout configuration on the memory transport
// in place of Redis: HTTP to the in-process hub is the baseline.
func TestBrowser(t *testing.T) {
	testBrowser(t, "", "memory")
}

// TestBrowserOnRedis is TestBrowser with the shipped rollout
// configuration against a redis-server of its own.
func TestBrowserOnRedis(t *testing.T) {
	chromiumPath(t)
	srv := redistest.Start(t)
	testBrowser(t, srv.URL(), "redis")
}

var latencyText = regexp.MustCompile(`^\d+(\.\d+)? (µs|ms|s)$`)

func testBrowser(t *testing.T, redisURL, candidate string) {
	browser := newBrowser(t)
	configPath := filepath.Join(t.TempDir(), "rollout.yaml")
	config := rolloutConfig(t, redisURL, freePort(t))
	writeConfig(t, configPath, config)
	addr, logs := startService(t, configPath)
	// Each test runs a service of its own: the conversation starts empty.
	base := "http://" + addr + "/?c=demo"

	// Cleanups run last first: the tabs close before the service stops,
	// so their streams are not left reconnecting.
	tabA := newTab(t, browser, base+"&name=Alice")
	tabB := newTab(t, browser, base+"&name=Bob")
	for _, tab := range []context.Context{tabA, tabB} {
		step(t, tab, "the page connects and shows the rollout on",
			chromedp.WaitVisible(chromedp.CSS(`#status.live`)),
			chromedp.WaitVisible(chromedp.CSS(`#routing[data-enabled="true"] #switch.on`)),
		)
	}

	// Alice types: Bob sees it, then, once she stops, no more.
	step(t, tabA, "Alice types", chromedp.SendKeys(chromedp.CSS(`#text`), "hello Bob"))
	step(t, tabB, "Bob sees Alice typing", chromedp.WaitVisible(chromedp.CSS(`#typing`)))
	assert.Equal(t, "Alice is typing…", text(t, tabB, `#typing`))
	step(t, tabB, "the typing indicator expires", chromedp.WaitNotVisible(chromedp.CSS(`#typing`)))

	// Alice sends: Bob sees the message, the transport that carried it
	// (the candidate: the rollout is at 100%) and its latency.
	step(t, tabA, "Alice sends", chromedp.Click(chromedp.CSS(`#send`)))
	msg := `#messages li.message[data-transport="` + candidate + `"]`
	step(t, tabB, "Bob sees the message", chromedp.WaitVisible(chromedp.CSS(msg)))
	assert.Equal(t, "Alice", text(t, tabB, msg+` .user`))
	assert.Equal(t, "hello Bob", text(t, tabB, msg+` .content`))
	assert.Equal(t, candidate, text(t, tabB, msg+` .transport`))
	assert.Regexp(t, latencyText, text(t, tabB, msg+` .latency`))
	step(t, tabB, "the panel counts the candidate's publishes",
		chromedp.WaitVisible(chromedp.CSS(`#split li[data-transport="`+candidate+`"]:not([data-events="0"])`)))

	// The master switch goes off in the file: the panel follows, and the
	// next message goes over HTTP, the baseline.
	const on, off = "enabled: true      # the master switch", "enabled: false     # the master switch"
	require.Contains(t, config, on)
	writeConfig(t, configPath, strings.Replace(config, on, off, 1))
	step(t, tabB, "the panel shows the switch off",
		chromedp.WaitVisible(chromedp.CSS(`#routing[data-enabled="false"] #switch.off`)))
	assert.Equal(t, "off", text(t, tabB, `#switch`))
	step(t, tabA, "Alice sends again",
		chromedp.SendKeys(chromedp.CSS(`#text`), "now over HTTP"),
		chromedp.Click(chromedp.CSS(`#send`)),
	)
	httpMsg := `#messages li.message[data-transport="http"]`
	step(t, tabB, "Bob sees it come over HTTP",
		chromedp.WaitVisible(chromedp.CSS(httpMsg)),
		chromedp.WaitVisible(chromedp.CSS(`#split li[data-transport="http"]:not([data-events="0"])`)),
	)
	assert.Equal(t, "now over HTTP", text(t, tabB, httpMsg+` .content`))
	assert.Regexp(t, latencyText, text(t, tabB, httpMsg+` .latency`))
	assert.Contains(t, logs.String(), "transport=http", "the hub got it over HTTP")

	ctx, cancel := context.WithTimeout(tabB, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	saveScreenshot(t, png)
}

// saveScreenshot keeps the page's picture as the test's artifact (go test
// -artifacts keeps it) and, with CHAT_SCREENSHOT set (make screenshot),
// at that path: the README's picture is TestBrowserOnRedis's.
func saveScreenshot(t *testing.T, png []byte) {
	t.Helper()
	require.True(t, len(png) > 8 && string(png[1:4]) == "PNG", "a PNG")
	path := filepath.Join(t.ArtifactDir(), "chat.png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
	if out := os.Getenv("CHAT_SCREENSHOT"); out != "" {
		require.NoError(t, os.MkdirAll(filepath.Dir(out), 0o755))
		require.NoError(t, os.WriteFile(out, png, 0o644))
		fmt.Fprintf(os.Stderr, "screenshot written to %s\n", out)
	}
}
