// Package store is the Cassandra side of the adapter: the session, the schema,
// the prepared statements and the codec for session state, ownership rows, node
// leases and shared families. The buffer hands it whole-session snapshots;
// residency uses it to read, claim, release and fence ownership.
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
//	shared      ((family), session, key) -> value blob
//	            shared families: any node writes, every node reads a family's
//	            whole partition; last writer wins by the writers' timestamps.
//	            One partition per family, so for small data (settings) only
//
// A schema created by an earlier release gains its new columns and tables at
// Open when Options.CreateSchema is set (migrations: ALTER TABLE ... ADD, which
// is idempotent here; new tables are created IF NOT EXISTS); otherwise apply
// them by hand:
//
//	ALTER TABLE leases ADD since timestamp;
//	CREATE TABLE IF NOT EXISTS shared (family text, session text, key text,
//	    value blob, PRIMARY KEY ((family), session, key));
//
// The shared table is created only with Options.SharedTable (a node with a
// shared family).
//
// A session's state items carry Options.StateTTL, or the TTL Options.TTLFor
// gives that session.
//
// Write timestamps are not wall-clock time: Timestamp(epoch, seq) puts the
// session's ownership epoch in the high bits, so every write of a newer owner
// outranks every write of an older one whatever the clocks say. Do not use a
// time-window compaction strategy on the state table.
package store
