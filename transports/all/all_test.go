package all_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/transports"
	_ "github.com/switchyard-go/switchyard/transports/all"
)

// The names are literals: importing the transport packages here, for their
// Name constants, would register them whatever package all imports.
func TestRegistersBuiltins(t *testing.T) {
	names := transports.Names()
	for _, name := range []string{"memory", "gochannel", "redisstream", "http", "jetstream"} {
		require.Contains(t, names, name)
		_, err := transports.Default().Lookup(name)
		require.NoError(t, err)
	}
}
