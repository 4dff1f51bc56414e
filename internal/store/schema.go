package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// schema returns the DDL of the store's keyspace and tables. Identifiers were
// validated by Options.withDefaults; the replication map comes from validated
// configuration.
func schema(o Options) []string {
	ks, t := o.Keyspace, o.Tables
	ddl := []string{
		fmt.Sprintf(`CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s AND durable_writes = true`, ks, o.Replication),
		// One partition per session. Timestamps are epoch-ranked, not wall-clock
		// time: keep size-tiered or unified compaction, never time-window.
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s (
			session text,
			key text,
			value blob,
			format tinyint,
			PRIMARY KEY ((session), key)
		) WITH comment = 'holdover: session state, written with epoch-ranked timestamps'`, ks, t.State),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s (
			session text PRIMARY KEY,
			owner text,
			epoch bigint,
			released boolean,
			claimed_at timestamp,
			ended boolean
		) WITH comment = 'holdover: session ownership, written only by lightweight transactions'`, ks, t.Owners),
		// One partition per node, whose entries every ended or adopted
		// session deletes: see indexGCGrace.
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s (
			owner text,
			session text,
			epoch bigint,
			PRIMARY KEY ((owner), session)
		) WITH comment = 'holdover: sessions by owner, for bulk takeover' AND gc_grace_seconds = %d`, ks, t.OwnerIndex, indexGCGrace),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s (
			node text PRIMARY KEY,
			renewed_at timestamp,
			ttl_ms bigint,
			incarnation text,
			since timestamp
		) WITH comment = 'holdover: node liveness leases' AND gc_grace_seconds = 3600`, ks, t.Leases),
	}
	if o.SharedTable {
		// One partition per family, read whole by every node: for small data
		// (settings), not for sessions. Last writer wins by the writers'
		// timestamps; created IF NOT EXISTS, so a keyspace of an earlier release
		// gains it here. Only for nodes with a shared family: DDL is slow, and
		// every Open of a fresh keyspace would pay for a table nobody uses.
		ddl = append(ddl, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s (
			family text,
			session text,
			key text,
			value blob,
			PRIMARY KEY ((family), session, key)
		) WITH comment = 'holdover: shared families, last writer wins by write timestamp'`, ks, t.Shared))
	}
	return ddl
}

// indexGCGrace is the owner index's gc_grace_seconds. Each node's entries
// are one partition, and every session the node ends or loses to an
// adoption deletes its entry there: a node that ends sessions at a few
// hundred a second would otherwise hold more tombstones than Cassandra's
// tombstone_failure_threshold (100,000 by default) within the default
// gc_grace_seconds (10 days), and every listing of it, so the bulk takeover
// after its death, would fail (READ_TOO_MANY_TOMBSTONES). A read drops the
// tombstones older than gc_grace_seconds before it counts them, so at 0 it
// counts none. The index is a hint: a delete that a replica missed may come
// back as a stale entry, which a takeover checks against the ownership row,
// skips and removes, and hints for the table are not kept (an entry a
// replica missed is still read from the others at LOCAL_QUORUM).
const indexGCGrace = 0

// migrations bring a schema created by an earlier release up to date. Each
// may fail with "already exists" (InvalidRequest), which is success.
func migrations(o Options) []string {
	ks, t := o.Keyspace, o.Tables
	return []string{
		// leases.since: when the node's current unbroken lease began (Lease.Since).
		fmt.Sprintf(`ALTER TABLE %s.%s ADD since timestamp`, ks, t.Leases),
	}
}

// createSchema runs the DDL on a session without a keyspace and waits for
// schema agreement.
func createSchema(ctx context.Context, o Options) error {
	c := o.cluster()
	c.Timeout = max(o.Timeout, 30*time.Second) // DDL is slow on small nodes
	sess, err := c.CreateSession()
	if err != nil {
		return wrap("connect", "", o.connectHint(err))
	}
	defer sess.Close()
	for _, ddl := range schema(o) {
		if err := sess.Query(ddl).ExecContext(ctx); err != nil {
			return wrap("create schema", "", err)
		}
	}
	for _, ddl := range migrations(o) {
		if err := sess.Query(ddl).ExecContext(ctx); err != nil && !alreadyExists(err) {
			return wrap("update schema", "", err)
		}
	}
	if err := setIndexGCGrace(ctx, sess, o); err != nil {
		return wrap("update schema", "", err)
	}
	if err := sess.AwaitSchemaAgreement(ctx); err != nil {
		return wrap("await schema agreement", "", err)
	}
	return nil
}

// setIndexGCGrace gives an owner index created by an earlier release
// indexGCGrace, altering the table only when it has another value (DDL is
// slow, and every Open with CreateSchema runs this).
func setIndexGCGrace(ctx context.Context, sess *gocql.Session, o Options) error {
	var gc int
	// Unquoted identifiers are stored lower-cased.
	err := sess.Query(`SELECT gc_grace_seconds FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?`,
		strings.ToLower(o.Keyspace), strings.ToLower(o.Tables.OwnerIndex)).ScanContext(ctx, &gc)
	if err != nil || gc == indexGCGrace {
		return err
	}
	return sess.Query(fmt.Sprintf(`ALTER TABLE %s.%s WITH gc_grace_seconds = %d`, o.Keyspace, o.Tables.OwnerIndex, indexGCGrace)).ExecContext(ctx)
}

// alreadyExists reports a DDL refused because what it adds exists.
func alreadyExists(err error) bool {
	var ri *gocql.RequestErrInvalid
	return errors.As(err, &ri) && strings.Contains(strings.ToLower(ri.Message()), "already exist")
}
