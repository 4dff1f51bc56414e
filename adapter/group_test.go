package adapter

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// TestGroupedFlushes: with one flush slot, ready sessions travel in groups.
// New sessions are recorded as this node's, established ones are written at
// their epoch, an ended one is deleted with its ownership, and a session owned
// by another node is refused alone; a peer then adopts every written session
// with its last committed state.
func TestGroupedFlushes(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	cfg := testConfig(t, "a", ks)
	cfg.FlushConcurrency = 1
	cfg.FlushGroupMax = 8
	a := openNode(t, cfg)
	b := openNode(t, testConfig(t, "b", ks))

	// "taken" is b's; "gone" exists and will end; "s0".."s39" are new.
	if err := b.Commit("taken", put("k", "b's")); err != nil {
		t.Fatal(err)
	}
	flush(t, b)
	if err := a.Commit("gone", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)

	const n = 40
	for i := range n {
		if err := a.Commit(fmt.Sprint("s", i), put("k", fmt.Sprint("v", i)), put("j", "x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.End("gone"); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit("taken", put("k", "a's")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	// Round two: the same sessions, now owned, change again.
	for i := range n {
		if err := a.Commit(fmt.Sprint("s", i), put("k", fmt.Sprint("w", i))); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, a)

	st := a.Stats().Buffer
	if st.Groups == 0 || st.Grouped < n {
		t.Errorf("groups %d carrying %d snapshots; want groups carrying at least %d", st.Groups, st.Grouped, n)
	}
	if st.Drops != 1 || st.DroppedItems != 1 {
		t.Errorf("drops %d (%d items), want 1 (the session owned by b)", st.Drops, st.DroppedItems)
	}
	a.crash()
	for i := range n {
		m := adoptEventually(t, b, fmt.Sprint("s", i)).Map()
		if string(m["k"]) != fmt.Sprint("w", i) || string(m["j"]) != "x" || len(m) != 2 {
			t.Errorf("s%d adopted %q, want k=w%d j=x", i, m, i)
		}
	}
	if _, err := b.Adopt(context.Background(), "gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("adopt of the ended session: %v", err)
	}
	s, err := b.Peek(context.Background(), "taken")
	if err != nil || string(s.Map()["k"]) != "b's" {
		t.Errorf("b's session after a's refused write: %+v %v", s, err)
	}
}
