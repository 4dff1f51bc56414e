// Package node is holdover's reference session node: a small HTTP/JSON
// session-processing server that embeds the adapter the way a real host
// would.
//
// The data flow follows the adapter's design. Each session lives in an
// in-memory Table; an event runs as a transaction on it (Table.Begin, mutate,
// Tx.Commit), and the transaction's commit hook hands exactly the changed
// items to adapter.Commit (or adapter.End), inside the commit: if the adapter
// refuses them the transaction rolls back and nothing is applied. An event for
// a session this node does not hold calls adapter.Adopt and restores the
// returned items into the table before applying the event.
//
// A session is stored in Cassandra as items:
//
//	meta/version     decimal version, +1 per applied event (1 after create)
//	attr/<name>      the value of attribute <name>
//	hist/<8 digits>  history entry number <n>, from 00000000
//
// docs/node-api.md describes the HTTP API and cmd/holdover-node runs it.
package node
