package store

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// countQueries counts the statements a session runs that contain match.
type countQueries struct {
	match string
	n     atomic.Int32
}

func (c *countQueries) ObserveQuery(_ context.Context, q gocql.ObservedQuery) {
	if strings.Contains(q.Statement, c.match) {
		c.n.Add(1)
	}
}

// An End removes this node's index entry of the session in one request, as
// a delete at the next epoch: the entry of a session started again since
// (two epochs up) stays, and a late write of the ended epoch's entry (a
// refresh on its way) stays shadowed. Before, each End read the entry's
// write time first: one read more per session ended.
func TestAnEndsUnindexIsOneDeleteAtTheNextEpoch(t *testing.T) {
	t.Parallel()
	hosts, port := cassandratest.Hosts(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ks := cassandratest.Keyspace(t)
	setup, err := Open(ctx, Options{Hosts: hosts, Port: port, Keyspace: ks, CreateSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	reads := &countQueries{match: "SELECT"}
	st, _ := openFaulty(t, ks, 10*time.Second, func(c *gocql.ClusterConfig) { c.QueryObserver = reads })
	for _, s := range []string{"ended", "restarted"} {
		if err := setup.IndexOwner(ctx, "a", s, 4, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// restarted began again at epoch 6 (its End moved the row to 5) before
	// the End's unindex landed.
	if err := setup.IndexOwner(ctx, "a", "restarted", 6, time.Hour); err != nil {
		t.Fatal(err)
	}
	before := reads.n.Load()
	for _, s := range []string{"ended", "restarted"} {
		if err := st.UnindexOwner(ctx, "a", s, 4); err != nil {
			t.Fatal(err)
		}
	}
	if n := reads.n.Load() - before; n != 0 {
		t.Errorf("two Ends' unindexes read %d times, want none", n)
	}
	if err := setup.IndexOwner(ctx, "a", "ended", 4, time.Hour); err != nil { // the late refresh
		t.Fatal(err)
	}
	listed := map[string]uint64{}
	if err := setup.OwnedBy(ctx, "a", func(o Owned) bool { listed[o.Session] = o.Epoch; return true }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed["restarted"] != 6 {
		t.Fatalf("a lists %v after the Ends, want only restarted at epoch 6", listed)
	}
}
