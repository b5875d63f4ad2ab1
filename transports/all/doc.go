// Package all imports every built-in transport, so that each registers its
// type name in the process-wide registry:
//
//	import _ "github.com/switchyard-go/switchyard/transports/all"
//
// It imports memory, gochannel, redisstream, http and
// jetstream. A program that wants
// only some transports imports those packages instead, and links nothing
// else.
package all
