// Package importrules holds the test that keeps switchyard's dependencies
// pointing one way (shared design: the core names no concrete transport, and
// transports, middleware and coalesce never import the bus).
package importrules
