package residency

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
)

// refreshGate blocks the first RefreshOwner call until released and records
// every call's session and epoch.
type refreshGate struct {
	*memstore.Store
	mu      sync.Mutex
	first   bool
	entered chan string
	release chan struct{}
	calls   chan [2]any
}

func (g *refreshGate) RefreshOwner(ctx context.Context, s, node string, epoch uint64, ttl time.Duration) (bool, error) {
	g.mu.Lock()
	first := !g.first
	g.first = true
	g.mu.Unlock()
	if first {
		g.entered <- s
		<-g.release
	}
	ok, err := g.Store.RefreshOwner(ctx, s, node, epoch, ttl)
	select {
	case g.calls <- [2]any{s, epoch}:
	default:
	}
	return ok, err
}

// discardLog records what a Manager discards from its buffer; pending is
// what the buffer holds unwritten.
type discardLog struct {
	mu        sync.Mutex
	discarded []string
	pending   []string
}

func (d *discardLog) Pause()  {}
func (d *discardLog) Resume() {}
func (d *discardLog) PendingSessions() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(d.pending), func(s string) bool { return slices.Contains(d.discarded, s) })
}
func (d *discardLog) Discard(s ...string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.discarded = append(d.discarded, s...)
	return len(s)
}
func (d *discardLog) has(s string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Contains(d.discarded, s)
}

// A session ended and started again by this node while a refresh pass is
// running is refreshed by that pass at the epoch of the pass's snapshot. The
// stale epoch fails the compare-and-set, and the refresh must not take that
// for a peer's adoption: the session is still this node's, and its unwritten
// changes must not be discarded (nor counted lost). Before, they were.
func TestRefreshAtAStaleEpochKeepsARecreatedSession(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	frozen := time.Now()
	st.Now = func() time.Time { return frozen } // nothing expires in the store
	g := &refreshGate{Store: st, entered: make(chan string, 1), release: make(chan struct{}), calls: make(chan [2]any, 64)}
	buf := &discardLog{}
	m := started(t, Config{NodeID: "a", LeaseTTL: 10 * time.Minute, OwnershipTTL: 60 * time.Millisecond,
		RefreshEvery: 5 * time.Millisecond, Flusher: buf}, g)
	for _, s := range []string{"x", "y"} {
		if _, err := m.EnsureOwned(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	var blocked string
	select {
	case blocked = <-g.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no refresh")
	}
	other := map[string]string{"x": "y", "y": "x"}[blocked]
	// While the pass is busy with the blocked session, the other one ends and
	// is started afresh on this node (with unwritten changes in the buffer).
	if err := m.Ended(ctx, other); err != nil {
		t.Fatal(err)
	}
	e, err := m.EnsureOwned(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	close(g.release)
	// Wait until the session has been refreshed at its current epoch.
	for deadline := time.After(5 * time.Second); ; {
		select {
		case c := <-g.calls:
			if c[0] == other && c[1] == e {
				goto done
			}
			continue
		case <-deadline:
			t.Fatal("recreated session never refreshed at its epoch")
		}
	}
done:
	if cur, ok := m.Epoch(other); !ok || cur != e {
		t.Fatalf("recreated session %q: owned=%v at %d, want %d", other, ok, cur, e)
	}
	if buf.has(other) {
		t.Errorf("refresh discarded the unwritten changes of %q, recreated and still owned at epoch %d", other, e)
	}
	if n := m.Stats().Lost; n != 0 {
		t.Errorf("Stats.Lost = %d, want 0: no session was adopted elsewhere", n)
	}
}
