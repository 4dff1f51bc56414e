// Package store is the Cassandra side of the adapter: the session, the schema,
// the prepared statements and the codec for session state, ownership rows and
// node leases. The buffer hands it whole-session snapshots; residency uses it to
// read, claim, release and fence ownership.
//
// Tables (keyspace configurable; names validated as CQL identifiers):
//
//	state       ((session), key) -> value blob, format tinyint
//	            written only with explicit, epoch-ranked timestamps and a TTL
//	owners      (session) -> owner, epoch, released, claimed_at
//	            written only by lightweight transactions, never with synthetic timestamps
//	owner_index ((owner), session) -> epoch
//	            which sessions a node owns, for bulk takeover
//	leases      (node) -> renewed_at, ttl_ms, incarnation, since, written with a TTL by heartbeats
//
// A schema created by an earlier release gains its new columns at Open when
// Options.CreateSchema is set (migrations: ALTER TABLE ... ADD, which is
// idempotent here); otherwise apply them by hand: ALTER TABLE leases ADD since
// timestamp.
//
// Write timestamps are not wall-clock time: Timestamp(epoch, seq) puts the
// session's ownership epoch in the high bits, so every write of a newer owner
// outranks every write of an older one whatever the clocks say. Do not use a
// time-window compaction strategy on the state table.
package store
