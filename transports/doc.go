// Package transports is the registry of switchyard's transport plugins.
//
// A transport is not a new interface: it is a Watermill [message.Publisher],
// a [message.Subscriber], or both. What this package adds is the plugin side's
// contract, as database/sql/driver is for SQL drivers: a [Factory] that builds
// a transport from its own section of the configuration, and a [Registry] that
// maps a type name (the `type` key of a transport's section) to its factory.
//
// Each transport lives in a subpackage that registers itself in init:
//
//	func init() { transports.Register(memory.Name, memory.Factory) }
//
// so a program links only the transports it imports. Import
// github.com/switchyard-go/switchyard/transports/all for every built-in one.
//
// Extra powers are optional interfaces found by type assertion, as Watermill
// does with [message.SubscribeInitializer]: a publisher that can wait until
// everything it accepted has been handed on implements [Drainer].
package transports

import "github.com/ThreeDotsLabs/watermill/message"

var _ message.Publisher // the package documentation links to it
