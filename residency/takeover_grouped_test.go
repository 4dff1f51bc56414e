package residency_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// grouping wraps a store, records the groups of fences and of reads a
// takeover sends, and can fail one session's fence within a group or every
// read of a group.
type grouping struct {
	*store.Store
	mu          sync.Mutex
	fenceGroups [][]string      // the sessions of each FenceSessions call
	landed      map[string]bool // sessions whose fence landed
	readGroups  [][]string      // the sessions of each ReadStates call
	// failFence, when set, names the session of a group whose fence fails
	// ("" for none); the others of the group are fenced.
	failFence func(group []string) string
	// failReads, when set, fails every read of the groups it is true of.
	failReads func(group []string) bool
}

var errFenceInjected = errors.New("injected: fence timed out")

func sessionsOf(fs []store.Fencing) []string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.Session
	}
	return s
}

func (g *grouping) FenceSessions(ctx context.Context, fs []store.Fencing, errs []error) {
	group := sessionsOf(fs)
	g.mu.Lock()
	fail := ""
	if g.failFence != nil {
		fail = g.failFence(group)
	}
	g.fenceGroups = append(g.fenceGroups, group)
	g.mu.Unlock()
	var (
		rest []store.Fencing
		at   []int
	)
	for i, f := range fs {
		if f.Session == fail {
			errs[i] = errFenceInjected
			continue
		}
		rest = append(rest, f)
		at = append(at, i)
	}
	restErrs := make([]error, len(rest))
	g.Store.FenceSessions(ctx, rest, restErrs)
	g.mu.Lock()
	defer g.mu.Unlock()
	for j, i := range at {
		errs[i] = restErrs[j]
		if errs[i] == nil {
			if g.landed == nil {
				g.landed = map[string]bool{}
			}
			g.landed[fs[i].Session] = true
		}
	}
}

func (g *grouping) ReadStates(ctx context.Context, sessions []string, items [][]store.Item, errs []error) {
	g.mu.Lock()
	g.readGroups = append(g.readGroups, slices.Clone(sessions))
	fail := g.failReads != nil && g.failReads(sessions)
	g.mu.Unlock()
	if fail {
		for i := range errs {
			errs[i] = errors.New("injected: read timed out")
		}
		return
	}
	g.Store.ReadStates(ctx, sessions, items, errs)
}

func (g *grouping) fenced(session string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.landed[session]
}

// orphans persists n sessions prefix-0 ... owned by a dead node, each with
// k = "v-<i>".
func orphans(t *testing.T, st *store.Store, prefix, dead string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%02d", prefix, i)
		orphan(t, st, id, dead, store.Item{Key: "k", Value: []byte(fmt.Sprintf("v-%d", i))})
		ids = append(ids, id)
	}
	return ids
}

// A bulk takeover fences several sessions in one request. When the fence of
// one session in such a group fails, that session alone is reported failed
// (not adopted, not owned, OnAdopted not called); the others of its group
// are adopted. Every session is reported adopted only once its fence has
// landed, and a late write of the dead node at its epoch never shows in a
// session fenced by a group. The session whose fence failed is adopted,
// and fenced, by a later Adopt.
func TestTakeoverGroupedFenceFailsOnlyItsSession(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	st := c.store(false)
	ctx := context.Background()
	ids := orphans(t, st, "gf", "dead-gf", 40)

	g := &grouping{Store: c.store(false)}
	var failed string
	g.failFence = func(group []string) string {
		if failed == "" && len(group) >= 2 {
			failed = group[len(group)/2]
			return failed
		}
		return ""
	}
	b := c.node("b", g)
	var (
		mu        sync.Mutex
		adopted   = map[string]string{}
		unfenced  []string
		notOwnedY []string
	)
	rep, err := b.Takeover(ctx, "dead-gf", residency.TakeoverOptions{OnAdopted: func(a *residency.Adopted) {
		mu.Lock()
		defer mu.Unlock()
		if !g.fenced(a.Session) {
			unfenced = append(unfenced, a.Session)
		}
		if _, ok := b.Epoch(a.Session); !ok {
			notOwnedY = append(notOwnedY, a.Session)
		}
		if len(a.Items) == 1 {
			adopted[a.Session] = string(a.Items[0].Value)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if failed == "" {
		t.Fatalf("no fence request carried two sessions or more: %v", g.fenceGroups)
	}
	if len(unfenced) > 0 || len(notOwnedY) > 0 {
		t.Fatalf("reported adopted before its fence landed: %v; before it was owned: %v", unfenced, notOwnedY)
	}
	if rep.Listed != 40 || rep.Adopted != 39 || rep.Failed != 1 || rep.Skipped != 0 {
		t.Fatalf("report %+v, want 40 listed, 39 adopted, 1 failed", rep)
	}
	if len(rep.Errors) != 1 || !errors.Is(rep.Errors[0], errFenceInjected) || !strings.Contains(rep.Errors[0].Error(), failed) {
		t.Fatalf("errors %v, want the injected fence failure of %s", rep.Errors, failed)
	}
	var group []string
	for _, gr := range g.fenceGroups {
		if slices.Contains(gr, failed) {
			group = gr
		}
	}
	for i, id := range ids {
		_, owned := b.Epoch(id)
		if id == failed {
			if owned || adopted[id] != "" {
				t.Errorf("%s, whose fence failed, is owned (%v) or reported adopted (%q)", id, owned, adopted[id])
			}
			continue
		}
		if want := fmt.Sprintf("v-%d", i); !owned || adopted[id] != want {
			t.Errorf("%s: owned %v, restored %q, want owned and %q (its group: %v)", id, owned, adopted[id], want, group)
		}
		// The dead node's late flush at its epoch, clock far ahead.
		if err := st.WriteSession(ctx, &store.Write{Session: id, Epoch: 1, Seq: 1 << 40, Items: []store.Item{{Key: "k", Value: []byte("zombie")}, {Key: "z", Value: []byte("zombie")}}}); err != nil {
			t.Fatal(err)
		}
		if got := state(t, st, id); len(got) != 1 || got["k"] != fmt.Sprintf("v-%d", i) {
			t.Errorf("%s after a late write of the dead node: %v, want only k=v-%d", id, got, i)
		}
	}
	// The session whose fence failed is owned by b in Cassandra, unfenced:
	// b's next Adopt claims it again and fences.
	a, err := b.Adopt(ctx, failed, residency.AdoptOptions{})
	if err != nil || len(a.Items) != 1 {
		t.Fatalf("adopting %s after its failed fence: %+v %v", failed, a, err)
	}
	if err := st.WriteSession(ctx, &store.Write{Session: failed, Epoch: 1, Seq: 1 << 40, Items: []store.Item{{Key: "z", Value: []byte("zombie")}}}); err != nil {
		t.Fatal(err)
	}
	if got := state(t, st, failed); len(got) != 1 || got["k"] != string(a.Items[0].Value) {
		t.Fatalf("%s after its adoption and a late write: %v", failed, got)
	}
}

// The states of the sessions listed are read several to a request, ahead
// of their claims; when such a read fails, its sessions are read one by one
// after their claims and adopted all the same.
func TestTakeoverReadsAheadAndFallsBack(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	st := c.store(false)
	ctx := context.Background()
	ids := orphans(t, st, "ra", "dead-ra", 100)

	g := &grouping{Store: c.store(false)}
	reads := 0
	g.failReads = func([]string) bool { reads++; return reads == 1 }
	b := c.node("b", g)
	var (
		mu      sync.Mutex
		adopted = map[string]string{}
	)
	rep, err := b.Takeover(ctx, "dead-ra", residency.TakeoverOptions{OnAdopted: func(a *residency.Adopted) {
		mu.Lock()
		defer mu.Unlock()
		if len(a.Items) == 1 {
			adopted[a.Session] = string(a.Items[0].Value)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Listed != 100 || rep.Adopted != 100 {
		t.Fatalf("report %+v, want 100 listed and adopted", rep)
	}
	if len(g.readGroups) < 2 || len(g.readGroups) >= 100 || len(g.readGroups[0]) < 2 {
		t.Fatalf("%d read-ahead requests for 100 sessions (first of %d): want a few, several sessions each", len(g.readGroups), len(g.readGroups[0]))
	}
	for i, id := range ids {
		if want := fmt.Sprintf("v-%d", i); adopted[id] != want {
			t.Errorf("%s restored %q, want %q (failed read: %v)", id, adopted[id], want, slices.Contains(g.readGroups[0], id))
		}
	}
}
