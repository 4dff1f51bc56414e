package residency

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/store"
)

// A process paused past its lease TTL wakes up with a renewal that succeeds:
// it must still notice that its lease lapsed, fence, and keep only the
// sessions nobody adopted meanwhile.
func TestLapseUnseenWhilePausedFencesOnWake(t *testing.T) {
	t.Parallel()
	open := keyspaceStores(t)
	stA := open(true)
	fenced := make(chan []string, 1)
	recovered := make(chan []string, 1)
	a, err := New(Config{NodeID: "a", LeaseTTL: 3 * time.Second,
		OnFenced:    func(s []string) { fenced <- s },
		OnRecovered: func(lost []string) { recovered <- lost },
	}, stA)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx, false)
	for _, s := range []string{"kept", "taken"} {
		if _, err := a.EnsureOwned(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	b, err := New(Config{NodeID: "b", LeaseTTL: 3 * time.Second}, open(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx, false)
	if _, err := b.Adopt(ctx, "taken", AdoptOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	// A "wakes up": its last renewal is older than the TTL.
	a.lastRenew.Store(int64(a.elapsed() - 10*time.Second))
	if a.LeaseValid() {
		t.Fatal("a lapsed lease reported valid")
	}
	if _, err := a.EnsureOwned(ctx, "new"); err != ErrFenced {
		t.Fatalf("creating a session with a lapsed lease: %v", err)
	}
	select {
	case s := <-fenced:
		sort.Strings(s)
		if len(s) != 2 || s[0] != "kept" || s[1] != "taken" {
			t.Fatalf("fenced with %v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no fence after waking with a lapsed lease")
	}
	select {
	case lost := <-recovered:
		if len(lost) != 1 || lost[0] != "taken" {
			t.Fatalf("recovered losing %v, want [taken]", lost)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no recovery")
	}
	if _, ok := a.Epoch("kept"); !ok || !a.LeaseValid() {
		t.Fatal("a did not keep the session nobody adopted, or stayed fenced")
	}
	if _, ok := a.Epoch("taken"); ok {
		t.Fatal("a still owns the adopted session")
	}
}

// keyspaceStores gives a test a keyspace of its own and a function opening a
// store on it (a node's own driver session), the first with the schema.
func keyspaceStores(t *testing.T) func(schema bool) *store.Store {
	hosts, port := cassandratest.Hosts(t)
	ks := cassandratest.Keyspace(t)
	return func(schema bool) *store.Store {
		st, err := store.Open(context.Background(), store.Options{Hosts: hosts, Port: port, Keyspace: ks, CreateSchema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		return st
	}
}
