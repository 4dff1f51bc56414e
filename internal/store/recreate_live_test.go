package store

import (
	"context"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// A re-creation guessed the row ended at epoch 1, but the session is live
// (another node started it again first). The failed compare-and-set must
// read the row as what it is, live and owned: a failed condition returns only
// the columns it names, and without the owner among them the row read as
// ended (an empty owner), so CreateOwner spent two more lightweight
// transactions before it learned the owner.
func TestAFailedRecreationReadsALiveRowAsLive(t *testing.T) {
	hosts, port := cassandratest.Hosts(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := Open(ctx, Options{Hosts: hosts, Port: port, Keyspace: cassandratest.Keyspace(t), CreateSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if created, _, err := st.CreateOwner(ctx, "s", "a", 0, time.Hour); err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	created, cur, err := st.recreate(ctx, "s", Owner{Epoch: 1, Ended: true}, "b", time.Hour)
	if err != nil || created {
		t.Fatalf("re-creation of a live row: created=%v err=%v", created, err)
	}
	if cur.Ended || cur.Node != "a" || cur.Epoch != 1 {
		t.Fatalf("failed re-creation read the row as %+v, want live, owned by a at epoch 1", cur)
	}
}
