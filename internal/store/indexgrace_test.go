package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// Every session a node ends or loses to an adoption deletes its owner-index
// entry, in the one partition of that node. With Cassandra's default
// gc_grace_seconds (10 days) a node that had ended 110,000 sessions could not
// be listed any more (READ_TOO_MANY_TOMBSTONES past 100,000), so the bulk
// takeover after its death failed. Open gives the index gc_grace_seconds 0,
// also to a keyspace of an earlier release, and the listing counts no
// tombstone.
func TestANodeThatEndedManySessionsCanStillBeTakenOver(t *testing.T) {
	hosts, port := cassandratest.Hosts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	o := Options{Hosts: hosts, Port: port, Keyspace: cassandratest.Keyspace(t), CreateSchema: true}
	st, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	// The keyspace of an earlier release: the index at the default.
	if err := st.s.Query(fmt.Sprintf(`ALTER TABLE %s.owner_index WITH gc_grace_seconds = 864000`, o.Keyspace)).ExecContext(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if st, err = Open(ctx, o); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var gc int
	if err := st.s.Query(`SELECT gc_grace_seconds FROM system_schema.tables WHERE keyspace_name = ? AND table_name = 'owner_index'`, o.Keyspace).ScanContext(ctx, &gc); err != nil || gc != indexGCGrace {
		t.Fatalf("owner_index gc_grace_seconds %d (%v) after Open, want %d", gc, err, indexGCGrace)
	}
	for i := range 5 {
		if err := st.IndexOwner(ctx, "x", fmt.Sprintf("live-%d", i), 1, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for b := range 110 {
		batch := st.s.Batch(gocql.UnloggedBatch)
		for i := range 1000 {
			batch.Entries = append(batch.Entries, gocql.BatchEntry{Stmt: st.stmts.unindexOwner, Args: []any{EpochBase(2), "x", fmt.Sprintf("ended-%d-%d", b, i)}})
		}
		if err := batch.ExecContext(ctx); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	if err := st.OwnedBy(ctx, "x", func(Owned) bool { n++; return true }); err != nil || n != 5 {
		t.Fatalf("listing x after 110,000 deleted entries: %d entries, %v; want the 5 live ones", n, err)
	}
}
