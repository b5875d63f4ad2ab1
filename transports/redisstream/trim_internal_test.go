package redisstream

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStreamIDs(t *testing.T) {
	require.Equal(t, "1700000000000-1", nextID("1700000000000-0"))
	require.Equal(t, "5-18446744073709551615", nextID("5-18446744073709551614"))
	require.Equal(t, "6-0", nextID("5-18446744073709551615"))
	require.Equal(t, -1, compareIDs("5-9", "5-10"))
	require.Equal(t, -1, compareIDs("9-0", "10-0"))
	require.Equal(t, 1, compareIDs("10-0", "9-99"))
	require.Zero(t, compareIDs("7-1", "7-1"))
}
