package residency

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// A takeover whose claim of a session landed but lost its reply counts the
// session Failed ("its entry stays: a later takeover tries again"). The
// next takeover of the same node must adopt it (the row names this node,
// which does not hold it: claimed and fenced like any adoption, as Adopt's
// doc promises: "the next Adopt claims it again and fences"). It used to
// skip it as owned elsewhere (by this very node) and delete its only index
// entry: the row named this node, nothing held the session, and no index
// listed it.
func TestTakeoverRetryAfterLostClaimReply(t *testing.T) {
	retriedTakeoverAdopts(t, "claim", memstore.LoseReply)
}

// The same with the claim landing and the fence failing: Failed, then the
// next takeover must adopt it (it used to skip it, as above).
func TestTakeoverRetryAfterFailedFence(t *testing.T) {
	retriedTakeoverAdopts(t, "fence", memstore.Fail)
}

// retriedTakeoverAdopts takes over node x's one session s with the first op
// of s failing as fault (after the claim landed), then takes x over again,
// and fails t unless the second takeover adopts s and this node holds it.
func retriedTakeoverAdopts(t *testing.T, op string, fault memstore.Fault) {
	t.Helper()
	ctx := context.Background()
	st := memstore.New()
	ownedAndIndexed(t, st, "s", "x")
	var once atomic.Bool
	once.Store(true)
	st.Faults = func(o, session string) memstore.Fault {
		if o == op && session == "s" && once.CompareAndSwap(true, false) {
			return fault
		}
		return memstore.OK
	}
	m := started(t, Config{NodeID: "b", LeaseTTL: 10 * time.Minute}, st)
	rep, err := m.Takeover(ctx, "x", TakeoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 1 {
		t.Fatalf("first takeover %+v, want 1 failed", rep)
	}
	rep, err = m.Takeover(ctx, "x", TakeoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, held := m.Epoch("s")
	o, _ := st.Owner("s")
	listed := map[string]uint64{}
	for _, n := range []string{"x", "b"} {
		_ = st.OwnedBy(ctx, n, func(ow store.Owned) bool {
			if ow.Session == "s" {
				listed[n] = ow.Epoch
			}
			return true
		})
	}
	if rep.Adopted != 1 || !held {
		t.Fatalf("second takeover %+v; held %v; row %+v; index %v: a session whose row names this node is neither adopted nor held", rep, held, o, listed)
	}
}

// ownedAndIndexed records session as node's at epoch 1, with its owner-index
// entry: a session of a node to take over.
func ownedAndIndexed(t *testing.T, st *memstore.Store, session, node string) {
	t.Helper()
	ctx := context.Background()
	if ok, _, err := st.CreateOwner(ctx, session, node, 0, time.Hour); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := st.IndexOwner(ctx, node, session, 1, time.Hour); err != nil {
		t.Fatal(err)
	}
}
