// Package redistest runs real redis-server processes for tests, for this
// module's and for applications testing their own code against Redis: a
// server of its own for each test, on a free loopback port, with its own temporary
// directory, stopped when the test ends. It never touches a Redis already
// running on the machine (6379 included). Besides plain servers it starts
// servers with a password, an ACL file, TLS (with a throwaway PKI from
// [NewTLSFiles]) or an append-only file, and Redis Clusters; and it can
// kill, restart, or hand Watermill's test suite a command that restarts a
// server from outside the test (RestartCommand).
//
// It needs redis-server and redis-cli on the PATH. When they are missing the
// tests that use the package are skipped, except in CI: when the environment
// variable CI is true (as GitHub Actions and GitLab set it), they fail with
// "redis-server not found; CI must install it", so that a CI image without
// Redis cannot pass by skipping every Redis test. [Require] applies this rule
// on its own; [Start] and [StartCluster] apply it first.
//
// Checks go through redis-cli, so the package depends on no Redis client:
//
//	func TestPublish(t *testing.T) {
//		srv := redistest.Start(t, redistest.WithAOF())
//		pub := newPublisher(t, srv.URL()) // redis://127.0.0.1:41234/0
//		// … publish three messages …
//		if n := srv.Do(t, "XLEN", "events:chat"); n != "3" {
//			t.Fatalf("XLEN = %s, want 3", n)
//		}
//		srv.Kill()    // as a crash would
//		srv.Restart() // same port and directory: with AOF the stream is back
//	}
//
// A server WithTLS listens with TLS only and its URL starts with rediss://;
// clients take their configuration from [TLSFiles.ClientTLSConfig].
package redistest
