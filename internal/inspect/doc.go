// Package inspect is the operator's read-only view of what holdover persisted
// in Cassandra (the holdover-inspect command, and the soak's final read).
//
// An Inspector takes no lease, claims, releases or writes nothing, and never
// creates the schema, whatever HOLDOVER_CREATE_SCHEMA says. It connects as a
// node with the same adapter.Config would and reads at HOLDOVER_CONSISTENCY,
// so it sees what a node's Adopt would see; it may lag a node's unflushed
// commits by the flush window.
//
// A session has one shape, Session, whose Status the package computes from
// the ownership row and the owner's lease; Owner returns the same Owner a
// Session holds. Every lookup (Session, Owner, Lease) reports that there is
// nothing with an error matching ErrNotFound, never with a boolean. Input
// the store refuses (an empty or over-long session ID) is an
// *adapter.LimitError, and every error is expressed in the adapter's errors.
package inspect

import "github.com/holdover/holdover/adapter"

// ErrNotFound is what every lookup returns when there is nothing: a session
// with neither an ownership row nor items, a session without an ownership
// row (Owner), a node without a live lease (Lease). It is adapter.ErrNotFound
// itself, so errors.Is matches either.
var ErrNotFound = adapter.ErrNotFound
