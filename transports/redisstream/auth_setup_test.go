package redisstream_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports/redisstream"
	"github.com/switchyard-go/switchyard/transports/redisstream/redistest"
)

const (
	authAdminPassword = "Adm1n-pw-x9"
	authUserPassword  = "s3cret-Pw-q7"
)

// TestPublishConnectionSetupRefused: when Redis refuses a new connection
// while setting it up (AUTH, SELECT), go-redis reports it from the
// pipeline, not from each command; every publish must fail with Redis's
// error, and nothing is written.
func TestPublishConnectionSetupRefused(t *testing.T) {
	srv := redistest.Start(t, redistest.WithPassword(authAdminPassword), redistest.WithACL(
		"user switchyard on >"+authUserPassword+" "+strings.Join(aclRule(), " "),
		"user disabled off >"+authUserPassword+" ~* +@all",
	))
	const stream = "events:auth"
	for _, c := range []struct {
		name, url, want string
		db              string
	}{
		{"wrong password", "redis://default:wrong-pass-z1@" + srv.Addr() + "/0", "WRONGPASS", "0"},
		{"disabled user", "redis://disabled:" + authUserPassword + "@" + srv.Addr() + "/0", "WRONGPASS", "0"},
		{"no such database", "redis://default:" + authAdminPassword + "@" + srv.Addr() + "/99", "DB index is out of range", ""},
		{"select not permitted", "redis://switchyard:" + authUserPassword + "@" + srv.Addr() + "/1", "NOPERM", "1"},
	} {
		for _, mode := range []string{"direct", "flushers"} {
			t.Run(c.name+"/"+mode, func(t *testing.T) {
				cfg := opsConfig(c.url, "")
				cfg.PublishTimeout = 5 * time.Second
				pub := opsPublisher(t, cfg)
				if mode == "flushers" {
					redisstream.SendThroughFlushers(pub)
				}
				for range 3 {
					err := pub.Publish(stream, msg("refused"), msg("refused too"))
					require.ErrorContains(t, err, c.want)
					requireNoSecret(t, err.Error())
				}
				if c.db != "" {
					require.Equal(t, "0", srv.Do(t, "-n", c.db, "XLEN", stream), "nothing written")
				}
			})
		}
	}
}

// TestPublishAfterPasswordRotation: the password changes on the server
// while publishers publish, and the connections are closed, so the new
// ones fail their set-up. Every publish that returned nil is in the stream,
// and the publishes after the rotation fail.
func TestPublishAfterPasswordRotation(t *testing.T) {
	const newPassword = "n3w-Pw-r8"
	t.Run("requirepass", func(t *testing.T) {
		srv := redistest.Start(t, redistest.WithPassword(authAdminPassword))
		url := "redis://:" + authAdminPassword + "@" + srv.Addr() + "/0"
		rotatedPublishing(t, srv, url, "redis://:"+newPassword+"@"+srv.Addr()+"/0", func() {
			_, err := srv.Exec("--pass", authAdminPassword, "CONFIG", "SET", "requirepass", newPassword)
			require.NoError(t, err)
			_, err = srv.Exec("--pass", newPassword, "CLIENT", "KILL", "TYPE", "normal")
			require.NoError(t, err)
		})
	})
	t.Run("acl setuser", func(t *testing.T) {
		srv := redistest.Start(t, redistest.WithPassword(authAdminPassword), redistest.WithACL(
			"user switchyard on >"+authUserPassword+" "+strings.Join(aclRule(), " ")))
		url := "redis://switchyard:" + authUserPassword + "@" + srv.Addr() + "/0"
		rotatedPublishing(t, srv, url, "redis://:"+authAdminPassword+"@"+srv.Addr()+"/0", func() {
			srv.Do(t, "ACL", "SETUSER", "switchyard", "resetpass", ">"+newPassword)
			srv.Do(t, "CLIENT", "KILL", "USER", "switchyard")
		})
	})
}

// rotatedPublishing publishes from several goroutines through a publisher
// on url, calls rotate once some publishes have succeeded, and goes on
// until many have failed since. readURL reads the stream afterwards.
func rotatedPublishing(t *testing.T, srv *redistest.Server, url, readURL string, rotate func()) {
	t.Helper()
	const stream = "events:rotate"
	cfg := opsConfig(url, "")
	cfg.PublishTimeout = 5 * time.Second
	pub := opsPublisher(t, cfg)

	var (
		mu       sync.Mutex
		ok       []string
		failures atomic.Int64
		seq      atomic.Int64
		rotated  atomic.Bool
		before   = make(chan struct{})
		once     sync.Once
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		errTexts = map[string]bool{}
	)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				payload := fmt.Sprintf("m-%d", seq.Add(1))
				err := pub.Publish(stream, msg(payload))
				if err == nil {
					mu.Lock()
					ok = append(ok, payload)
					if len(ok) == 100 {
						once.Do(func() { close(before) })
					}
					mu.Unlock()
					continue
				}
				if rotated.Load() {
					failures.Add(1)
				}
				mu.Lock()
				errTexts[err.Error()] = true
				mu.Unlock()
			}
		})
	}
	select {
	case <-before:
	case <-time.After(10 * time.Second):
		close(stop)
		wg.Wait()
		t.Fatal("no 100 publishes before the rotation")
	}
	rotate()
	rotated.Store(true)
	require.Eventually(t, func() bool { return failures.Load() >= 200 }, 10*time.Second, time.Millisecond,
		"publishes fail once the password changed")
	close(stop)
	wg.Wait()

	// Publishes in flight when the connections closed fail with EOF or
	// the like; those on new connections with Redis's refusal.
	refused := false
	for text := range errTexts {
		requireNoSecret(t, text)
		refused = refused || strings.Contains(text, "WRONGPASS")
	}
	require.True(t, refused, "no publish failed with WRONGPASS: %v", errTexts)

	reader := newClient(t, readURL)
	entries, err := reader.XRange(context.Background(), stream, "-", "+").Result()
	require.NoError(t, err)
	written := make(map[string]bool, len(entries))
	for _, e := range entries {
		written[e.Values[redisstream.FieldPayload].(string)] = true
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range ok {
		require.True(t, written[p], "publish of %s returned nil but it is not in the stream", p)
	}
}

// requireNoSecret fails t if s holds a password of these tests.
func requireNoSecret(t *testing.T, s string) {
	t.Helper()
	for _, pw := range []string{authAdminPassword, authUserPassword, "wrong-pass-z1", "n3w-Pw-r8"} {
		require.NotContains(t, s, pw)
	}
}
