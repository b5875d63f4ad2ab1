// Package docs_test keeps the pages of docs/ true to the library: the
// metric tables of metrics.md, its PromQL and alert rules, and the Grafana
// dashboard are checked against what buses built with bus.New really
// register and export.
package docs_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Connections of http.Client to a server that is closed may take a
	// moment to notice it.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}
