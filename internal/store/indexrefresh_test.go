package store_test

import (
	"testing"
	"time"

	"github.com/holdover/holdover/internal/store"
)

// An owner index entry written again at its epoch (a resident session's
// refresh) lives for the new TTL: its timestamp is the epoch's, the same as
// before, and Cassandra resolves the tie by the later expiry.
func TestAnIndexEntryWrittenAgainAtItsEpochLivesForTheNewTTL(t *testing.T) {
	t.Parallel()
	st := open(t)
	c := ctx(t)
	if err := st.IndexOwner(c, "r", "refreshed", 4, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := st.IndexOwner(c, "r", "refreshed", 4, time.Hour); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2200 * time.Millisecond)
	var epoch uint64
	if err := st.OwnedBy(c, "r", func(o store.Owned) bool { epoch = o.Epoch; return true }); err != nil {
		t.Fatal(err)
	}
	if epoch != 4 {
		t.Fatalf("entry refreshed at its epoch listed at %d (0: expired with its first TTL), want 4", epoch)
	}
}
