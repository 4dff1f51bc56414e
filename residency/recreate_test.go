package residency_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/store"
)

// hinted records the ended-epoch hint of each ownership creation.
type hinted struct {
	*store.Store
	mu    sync.Mutex
	hints []uint64
}

func (h *hinted) CreateOwner(ctx context.Context, s, node string, ended uint64, ttl time.Duration) (bool, store.Owner, error) {
	h.mu.Lock()
	h.hints = append(h.hints, ended)
	h.mu.Unlock()
	return h.Store.CreateOwner(ctx, s, node, ended, ttl)
}

func (h *hinted) taken() []uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]uint64(nil), h.hints...)
}

// A session this node ended and starts again is created with one
// compare-and-set on the ended row it wrote (the hint), not an insert that
// fails first: the soak found re-created sessions whose first write came
// later than the window allows (recreated_lost_writes). A hint another
// node's creation made wrong costs a round, not the outcome.
func TestRecreateNamesTheEndedRow(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	st := &hinted{Store: c.store(false)}
	m := c.node("a", st)
	ctx := context.Background()
	if e, err := m.EnsureOwned(ctx, "again"); err != nil || e != 1 {
		t.Fatalf("create: %d %v", e, err)
	}
	if err := m.Ended(ctx, "again"); err != nil {
		t.Fatal(err)
	}
	if e, err := m.EnsureOwned(ctx, "again"); err != nil || e != 3 {
		t.Fatalf("started afresh at epoch %d (%v), want 3, one above the ended row", e, err)
	}
	if h := st.taken(); len(h) != 2 || h[0] != 0 || h[1] != 2 {
		t.Fatalf("ended hints %v, want [0 2]: the node that ended the session names its ended row", h)
	}
	if err := m.Ended(ctx, "again"); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := st.Store.CreateOwner(ctx, "again", "b", 4, time.Hour); err != nil || !ok {
		t.Fatalf("b starts it again: %v %v", ok, err)
	}
	if ok, err := st.Store.EndOwner(ctx, "again", "b", 5, time.Hour); err != nil || !ok {
		t.Fatalf("b ends it: %v %v", ok, err)
	}
	if e, err := m.EnsureOwned(ctx, "again"); err != nil || e != 7 {
		t.Fatalf("started afresh over b's End at epoch %d (%v), want 7", e, err)
	}
	if h := st.taken(); len(h) != 3 || h[2] != 4 {
		t.Fatalf("ended hints %v, want the stale hint 4 last", h)
	}
}
