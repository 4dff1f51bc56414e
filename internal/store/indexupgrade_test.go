package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// A keyspace of an earlier release holds owner-index entries written at its
// clock's time. The epoch-ranked timestamps of the entries written since
// must outrank them: an entry written again at its epoch (a refresh renewing
// its TTL) replaces the old one, and an adoption's move deletes it. Without
// the lift above wall-clock time both lost to the old entry: its TTL ran
// out with the session still live, and the dead owner kept listing a
// session a peer had taken.
func TestIndexWritesOutrankAnEarlierReleasesEntries(t *testing.T) {
	t.Parallel()
	hosts, port := cassandratest.Hosts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := Options{Hosts: hosts, Port: port, Keyspace: cassandratest.Keyspace(t), CreateSchema: true}
	st, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// As an earlier release wrote them: at the client's clock, short TTLs.
	old := fmt.Sprintf(`INSERT INTO %s.owner_index (owner, session, epoch) VALUES (?, ?, ?) USING TTL 3`, o.Keyspace)
	for _, s := range []string{"renewed", "moved"} {
		if err := st.s.Query(old, "a", s, int64(1)).ExecContext(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.IndexOwner(ctx, "a", "renewed", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.MoveIndex(ctx, "a", "b", []Owned{{Session: "moved", Epoch: 2}}, nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	list := func(node string) map[string]uint64 {
		m := map[string]uint64{}
		if err := st.OwnedBy(ctx, node, func(o Owned) bool { m[o.Session] = o.Epoch; return true }); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if a := list("a"); len(a) != 1 || a["renewed"] != 1 {
		t.Fatalf("a lists %v after the move, want only renewed at epoch 1", a)
	}
	time.Sleep(4 * time.Second) // past the earlier release's TTL
	if a, b := list("a"), list("b"); len(a) != 1 || a["renewed"] != 1 || len(b) != 1 || b["moved"] != 2 {
		t.Fatalf("past the old entries' TTL a lists %v, b %v; want renewed at epoch 1 on a, moved at epoch 2 on b", a, b)
	}
}
