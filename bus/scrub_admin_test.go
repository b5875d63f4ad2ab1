package bus

import (
	"encoding/json"
	"log/slog"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// AdminState removes a secret wherever else the configuration repeats it,
// as the dump does.
func TestAdminStateScrubsRepeatedSecrets(t *testing.T) {
	c := leakyConfig()
	c.Transports["leaky"]["description"] = "the hub's Redis, password " + leakyPassword
	c.Transports["leaky"]["url"] = leakyURL + "?client=" + url.QueryEscape(leakyPassword)
	b, err := New(c, WithRegistry(leakyRegistry()), WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Close()) })

	st := b.AdminState()
	out, err := json.Marshal(st)
	require.NoError(t, err)
	assert.Contains(t, string(out), "the hub's Redis, password ", "what is not secret stays")
	assertNoPasswordPiece(t, leakyPassword, "AdminState", string(out))
}
