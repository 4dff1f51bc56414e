package residency_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// Takeover claims each listed session at the epoch the index names, without
// reading the row or the lease again; where the index lags the row it falls
// back to an ordinary adoption, and a session another node has, or that
// ended, is skipped and not fenced. Every session adopted is fenced: a late
// write of the dead node never shows.
func TestTakeoverClaimsAtTheIndexedEpoch(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	st := c.store(false)
	ctx := context.Background()
	item := func(v string) []store.Item { return []store.Item{{Key: "k", Value: []byte(v)}} }
	orphan(t, st, "plain", "dead", item("plain")...)
	// The row moved on (the dead node re-adopted it at epoch 2 and its index
	// update was lost): the index still says epoch 1.
	orphan(t, st, "lagging", "dead", item("lagging")...)
	if won, _, err := st.Claim(ctx, "lagging", store.Owner{Node: "dead", Epoch: 1}, "dead", time.Hour); err != nil || !won {
		t.Fatalf("re-claim: %v %v", won, err)
	}
	if err := st.WriteSession(ctx, &store.Write{Session: "lagging", Epoch: 2, Seq: 1000, Items: item("lagging at 2")}); err != nil {
		t.Fatal(err)
	}
	// Released before the node died.
	orphan(t, st, "released", "dead", item("released")...)
	if ok, err := st.Release(ctx, "released", "dead", 1, time.Hour); err != nil || !ok {
		t.Fatalf("release: %v %v", ok, err)
	}
	// Claimed by another node since (the dead node's index entry stays); and ended.
	orphan(t, st, "taken", "dead", item("taken")...)
	if won, _, err := st.Claim(ctx, "taken", store.Owner{Node: "dead", Epoch: 1}, "other", time.Hour); err != nil || !won {
		t.Fatalf("claim by another node: %v %v", won, err)
	}
	orphan(t, st, "ended", "dead", item("ended")...)
	if ok, err := st.EndOwner(ctx, "ended", "dead", 1, time.Hour); err != nil || !ok {
		t.Fatalf("end: %v %v", ok, err)
	}

	g := &grouping{Store: c.store(false)}
	b := c.node("b", g)
	var mu sync.Mutex
	got := map[string]string{}
	rep, err := b.Takeover(ctx, "dead", residency.TakeoverOptions{
		OnAdopted: func(a *residency.Adopted) {
			mu.Lock()
			defer mu.Unlock()
			if len(a.Items) == 1 {
				got[a.Session] = string(a.Items[0].Value)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Listed != 5 || rep.Adopted != 3 || rep.Skipped != 2 || rep.Failed != 0 {
		t.Fatalf("report %+v, want 5 listed, 3 adopted, 2 skipped", rep)
	}
	want := map[string]string{"plain": "plain", "lagging": "lagging at 2", "released": "released"}
	for s, v := range want {
		if got[s] != v {
			t.Errorf("%s restored %q, want %q", s, got[s], v)
		}
		if _, ok := b.Epoch(s); !ok {
			t.Errorf("%s not owned after the takeover", s)
		}
	}
	if _, ok := b.Epoch("taken"); ok {
		t.Error("took a session another node claimed")
	}
	// A session whose claim lost is not fenced.
	for _, gr := range g.fenceGroups {
		if slices.Contains(gr, "taken") || slices.Contains(gr, "ended") {
			t.Errorf("fenced %v, with a session whose claim lost", gr)
		}
	}
	// A late write of the dead node, at its epoch, is fenced.
	if err := st.WriteSession(ctx, &store.Write{Session: "plain", Epoch: 1, Seq: 1 << 40, Items: item("zombie")}); err != nil {
		t.Fatal(err)
	}
	if v := state(t, st, "plain")["k"]; v != "plain" {
		t.Fatalf("after a late write of the dead node: k=%q, want the adopted state", v)
	}
}

// A takeover of a node whose lease is live is refused, naming the node (not
// a session: a takeover has none).
func TestTakeoverOfALiveNodeIsRefused(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.node("live-a", c.store(false))
	b := c.node("live-b", c.store(false))
	_, err := b.Takeover(context.Background(), "live-a", residency.TakeoverOptions{})
	var oe *residency.OwnedElsewhereError
	if !errors.As(err, &oe) || !oe.Live || oe.Owner != "live-a" || err.Error() != `node "live-a" is live (its lease has not expired)` {
		t.Fatalf("takeover of a live node: %v", err)
	}
}

// A forced takeover of a live node takes only what that node still owns: a
// session another live node adopted since (the owner index still lists it
// under the first) is skipped, not forced away from its new owner.
func TestForcedTakeoverSparesSessionsAnotherNodeAdopted(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	x := c.node("x", c.store(false))
	for _, s := range []string{"t1", "t2"} {
		if _, err := x.EnsureOwned(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	o := c.node("o", c.store(false))
	if a, err := o.Adopt(ctx, "t2", residency.AdoptOptions{Force: true, From: "x"}); err != nil || a.Epoch != 2 {
		t.Fatalf("o's forced adoption of t2: %+v %v", a, err)
	}
	// The index is a hint that may be stale: here it lists t2 under x again.
	// o moves t2's entry in the background, grouped with other adoptions'
	// after up to 50 ms; the stale entry is written once that move has
	// deleted x's, at epoch 2: the move's delete shadows x's entries of
	// older epochs, a late one of epoch 1 included.
	st := c.store(false)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		listed := false
		if err := st.OwnedBy(ctx, "x", func(o store.Owned) bool { listed = o.Session == "t2"; return !listed }); err != nil {
			t.Fatal(err)
		}
		if !listed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("o's adoption of t2 did not move its index entry off x within 10 s")
		}
	}
	if err := st.IndexOwner(ctx, "x", "t2", 2, time.Hour); err != nil {
		t.Fatal(err)
	}
	b := c.node("b", c.store(false))
	rep, err := b.Takeover(ctx, "x", residency.TakeoverOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Epoch("t1"); !ok || rep.Listed != 2 || rep.Adopted != 1 || rep.Skipped != 1 {
		t.Fatalf("forced takeover of x: %+v; t1 owned by b: %v", rep, ok)
	}
	if _, ok := b.Epoch("t2"); ok {
		t.Fatal("the forced takeover of x took t2, which live node o owns")
	}
	if e, ok := o.Epoch("t2"); !ok || e != 2 {
		t.Fatalf("o's hold of t2 after b's takeover of x: %d %v", e, ok)
	}
	if p, err := b.Peek(ctx, "t2"); err != nil || p.Owner != "o" {
		t.Fatalf("t2's owner after the takeover: %+v %v, want o", p, err)
	}
}
