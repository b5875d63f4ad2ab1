//go:build race

package bus

// raceEnabled: the race detector makes crypto/rand.Read's argument escape.
const raceEnabled = true
