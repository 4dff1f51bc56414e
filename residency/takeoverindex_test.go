package residency

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// comesBack makes node x come back (renew its lease and recover session s,
// claiming it again) once a takeover of x has found it dead and starts
// listing its sessions.
type comesBack struct {
	*memstore.Store
	back func()
}

func (c *comesBack) OwnedBy(ctx context.Context, node string, fn func(store.Owned) bool) error {
	if c.back != nil {
		c.back()
		c.back = nil
	}
	return c.Store.OwnedBy(ctx, node, fn)
}

// A takeover skips a session its node, back from a pause, has recovered
// meanwhile (the owner is live again), and keeps the session's index entry
// under that node. Before, it counted the entry as stale and deleted it,
// though the node still owned the session: a later takeover of the node
// (when it really dies) no longer listed it.
func TestTakeoverKeepsIndexOfASessionItsLiveOwnerRecovered(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	ownedAndIndexed(t, st, "s", "x")
	w := &comesBack{Store: st}
	w.back = func() {
		// x wakes: it renews its lease and its recovery claims s again.
		if err := st.RenewLease(ctx, "x", 10*time.Second, 100*time.Millisecond, time.Now(), "incx"); err != nil {
			t.Error(err)
		}
		if won, _, err := st.Claim(ctx, "s", store.Owner{Node: "x", Epoch: 1}, "x", time.Hour); err != nil || !won {
			t.Error("x's recovery claim:", won, err)
		}
	}
	m := started(t, Config{NodeID: "b", LeaseTTL: 10 * time.Minute}, w)

	rep, err := m.Takeover(ctx, "x", TakeoverOptions{})
	if err != nil && !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if rep.Adopted != 0 {
		t.Fatalf("took over a session its live owner recovered: %+v", rep)
	}
	if o, _ := st.Owner("s"); o.Node != "x" {
		t.Fatalf("row %+v, want x's", o)
	}
	listed := false
	if err := st.OwnedBy(ctx, "x", func(o store.Owned) bool { listed = listed || o.Session == "s"; return true }); err != nil {
		t.Fatal(err)
	}
	if !listed {
		t.Errorf("takeover report %+v: the owner index no longer lists s under x, which is live and owns it", rep)
	}
}
