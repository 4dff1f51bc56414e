package store_test

import (
	"testing"
	"time"

	"github.com/holdover/holdover/internal/store"
)

// An adoption's move of the owner index lands when it lands: a takeover
// moves its entries in chunks after its claims, and a node's clock may run
// ahead of its peers'. Here b owns s at epoch 1, c adopts it at 2, b wins it
// back at 3 and indexes it, and only then does c's move of epoch 2 land.
// b's entry of epoch 3 must stay listed: a bulk takeover of b lists its
// sessions from the index. Before, the move's delete, stamped by c's clock
// after b's insert, removed it, and a takeover of b missed the session.
func TestALateIndexMoveSparesTheEntryOfALaterEpoch(t *testing.T) {
	t.Parallel()
	st := open(t)
	c := ctx(t)
	if err := st.IndexOwner(c, "b", "late", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.IndexOwner(c, "b", "late", 3, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.MoveIndex(c, "b", "c", []store.Owned{{Session: "late", Epoch: 2}}, nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	listed := map[string]uint64{}
	for _, n := range []string{"b", "c"} {
		if err := st.OwnedBy(c, n, func(o store.Owned) bool { listed[n] = o.Epoch; return true }); err != nil {
			t.Fatal(err)
		}
	}
	if listed["b"] != 3 {
		t.Fatalf("after a late move of epoch 2, b lists the session at epoch %d (0: not at all), want 3; c at %d", listed["b"], listed["c"])
	}
	// An End's unindex at epoch 3 removes the entry, and a move of a later
	// epoch removes it too.
	if err := st.UnindexOwner(c, "b", "late", 3); err != nil {
		t.Fatal(err)
	}
	if err := st.IndexOwner(c, "b", "late", 5, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.MoveIndex(c, "b", "c", []store.Owned{{Session: "late", Epoch: 6}}, nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.IndexOwner(c, "c", "gone", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.MoveIndex(c, "c", "d", nil, []string{"gone", "never"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	clear(listed)
	for _, n := range []string{"b", "c"} {
		if err := st.OwnedBy(c, n, func(o store.Owned) bool { listed[n+"/"+o.Session] = o.Epoch; return true }); err != nil {
			t.Fatal(err)
		}
	}
	if len(listed) != 1 || listed["c/late"] != 6 {
		t.Fatalf("index %v, want only c's entry of late at epoch 6", listed)
	}
}
