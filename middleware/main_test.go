package middleware_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts, the stages' own and a router's, must have
// ended by the time the package's tests do.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
