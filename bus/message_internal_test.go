package bus

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNewUUIDIsARandomUUID(t *testing.T) {
	v4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		s := newUUID()
		assert.Regexp(t, v4, s)
		assert.False(t, seen[s], "repeated %s", s)
		seen[s] = true
	}
}
