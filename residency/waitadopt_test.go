package residency_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// burst is grouping that also counts ownership reads.
type burst struct {
	*grouping
	ownerReads atomic.Int64
}

func (b *burst) ReadOwner(ctx context.Context, s string) (store.Owner, bool, error) {
	b.ownerReads.Add(1)
	return b.grouping.ReadOwner(ctx, s)
}

// The adoptions of a dead node's sessions that waited for its lease
// (AdoptOptions.Wait) wake together when it ends, and adopt as a burst that
// does less per session than separate adoptions: no second read of the
// ownership row (each claims at the row it read before waiting), the states
// read several to a request and the fences sent several to a request. Each
// session is still fenced before it is reported adopted: a late write of
// the dead node never shows.
func TestWokenAdoptionsAdoptAsABurst(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	st := c.store(false)
	ctx := context.Background()
	const n = 30
	ids := orphans(t, st, "wb", "dead-wb", n)
	bs := &burst{grouping: &grouping{Store: c.store(false)}}
	b := c.node("b", bs)
	// The dead node's last renewal: its lease ends 3 s + the skew on.
	renewAs(t, st, "dead-wb", 3*time.Second)
	var wg sync.WaitGroup
	got := make([]*residency.Adopted, n)
	errs := make([]error, n)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = b.Adopt(ctx, id, residency.AdoptOptions{Wait: 10 * time.Second})
		}()
	}
	wg.Wait()
	for i, id := range ids {
		if errs[i] != nil || got[i].Epoch != 2 || len(got[i].Items) != 1 || string(got[i].Items[0].Value) != fmt.Sprint("v-", i) {
			t.Fatalf("%s: %+v %v, want adopted at epoch 2 with v-%d", id, got[i], errs[i], i)
		}
		if got[i].Waited <= 0 {
			t.Fatalf("%s did not wait: %+v", id, got[i])
		}
		if !bs.fenced(id) {
			t.Fatalf("%s reported adopted without its fence", id)
		}
	}
	if r := bs.ownerReads.Load(); r != n {
		t.Fatalf("%d waiting adoptions read ownership rows %d times, want %d (once each, before waiting)", n, r, n)
	}
	bs.mu.Lock()
	fences, reads := len(bs.fenceGroups), len(bs.readGroups)
	bs.mu.Unlock()
	if fences >= n || reads >= n {
		t.Fatalf("%d adoptions sent %d fence requests and %d state reads, want fewer: grouped", n, fences, reads)
	}
	// The dead node's late write at its epoch stays invisible.
	late := &store.Write{Session: ids[0], Epoch: 1, Seq: 1<<store.SeqBits - 2, Items: []store.Item{{Key: "k", Value: []byte("zombie")}}}
	if err := st.WriteSession(ctx, late); err != nil {
		t.Fatal(err)
	}
	if s := state(t, st, ids[0]); s["k"] != "v-0" {
		t.Fatalf("after the dead node's late write %s reads %v, want k=v-0", ids[0], s)
	}
}
