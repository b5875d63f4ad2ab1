package bus

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewUUIDIsARandomUUID(t *testing.T) {
	v4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		u := newUUID()
		s := string(u[:])
		assert.Regexp(t, v4, s)
		assert.False(t, seen[s], "repeated %s", s)
		seen[s] = true
	}
}

// NewMessage's UUID and published_at share one allocation; each is whole.
func TestNewMessageMetadata(t *testing.T) {
	before := time.Now()
	m := NewMessage("typing", "k", []byte("p"))
	assert.Len(t, m.UUID, 36)
	at, err := time.Parse(time.RFC3339Nano, m.Metadata.Get(MetaPublishedAt))
	require.NoError(t, err)
	assert.Equal(t, time.UTC, at.Location())
	assert.False(t, at.Before(before.Truncate(time.Second)))
	assert.Equal(t, "typing", m.Metadata.Get(MetaEventType))
	assert.Equal(t, "k", m.Metadata.Get(MetaEventKey))
	if !raceEnabled {
		// The message, its metadata map and its group, two ack channels, the
		// UUID and time.
		assert.Equal(t, 6.0, testing.AllocsPerRun(100, func() { NewMessage("typing", "k", nil) }))
	}
}
