package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/store"
)

// permanentErr reports whether err says retrying cannot help, as the
// buffer reads it (buffer.IsPermanent).
func permanentErr(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

func keysOnly(prefix string, n int) []store.Item {
	items := make([]store.Item, n)
	for i := range items {
		items[i] = store.Item{Key: fmt.Sprintf("%s%06d", prefix, i)}
	}
	return items
}

// RefreshState renews a session of more small items than a batch holds.
// Before, it bounded its batches by bytes only (1 MiB), so a session of
// over 65,535 small items made a batch of more statements than the
// protocol carries: every refresh failed and the items expired.
func TestRefreshStateRenewsMoreItemsThanABatchHolds(t *testing.T) {
	t.Parallel()
	st := open(t, func(o *store.Options) { o.StateTTL = time.Hour })
	const n = 70000
	all := keysOnly("k", n)
	for i, chunk := 0, 0; i < n; i, chunk = i+30000, chunk+1 {
		write(t, st, store.Write{Session: "many", Epoch: 1, Seq: uint64(10 + 2*chunk), Items: all[i:min(i+30000, n)]})
	}
	got, err := st.RefreshState(ctx(t), "many", 2*time.Hour) // every item has under 2 h left
	if err != nil || got != n {
		t.Fatalf("RefreshState renewed %d of %d items: %v (permanent=%v)", got, n, err, permanentErr(err))
	}
}

// A write of more statements than a batch holds can never be sent: it is
// a permanent error, not a transient one the buffer would retry forever
// (the buffer splits snapshots so that it never sends one). A fence that
// large is split, and lands.
func TestTooManyStatementsIsPermanentAndAFenceSplits(t *testing.T) {
	t.Parallel()
	st := open(t)
	items := keysOnly("d", 65536)
	if err := st.WriteSession(ctx(t), &store.Write{Session: "huge-w", Epoch: 1, Seq: 10, Items: items}); err == nil || !permanentErr(err) {
		t.Errorf("WriteSession of %d items: %v, want a permanent error", len(items), err)
	}
	for i := range items {
		items[i].Value = []byte{}
	}
	if err := st.Fence(ctx(t), "huge-f", 2, items); err != nil {
		t.Errorf("Fence of %d items: %v (permanent=%v)", len(items), err, permanentErr(err))
	}
	if got := read(t, st, "huge-f"); len(got) != len(items) {
		t.Errorf("after the fence %d items, want %d", len(got), len(items))
	}
}

// A fence of a session larger than Cassandra's largest mutation (16 MiB) is
// written in several batches, its tombstone with the last, and shadows an
// older write as a single batch would. Before, it was one batch however
// large: a session written in parts (each under MaxBatchBytes) could grow
// past the limit, and then every adoption of it failed.
func TestFenceOfASessionLargerThanAMutation(t *testing.T) {
	t.Parallel()
	st := open(t)
	big := make([]byte, 1<<20)
	var all []store.Item
	for i := range 24 {
		all = append(all, store.Item{Key: fmt.Sprintf("b%02d", i), Value: big})
	}
	for i := 0; i < len(all); i += 3 {
		write(t, st, store.Write{Session: "hugefence", Epoch: 1, Seq: uint64(10 + 2*i), Items: all[i : i+3]})
	}
	if err := st.Fence(ctx(t), "hugefence", 2, all); err != nil {
		t.Fatalf("Fence of a %d MiB session: %v (permanent=%v)", len(all), err, permanentErr(err))
	}
	if got := read(t, st, "hugefence"); len(got) != len(all) {
		t.Fatalf("after the fence %d items, want %d", len(got), len(all))
	}
	// A zombie write of the old epoch, landing after the fence, stays hidden.
	write(t, st, store.Write{Session: "hugefence", Epoch: 1, Seq: 1000, Items: []store.Item{{Key: "zombie", Value: []byte("z")}}})
	if got := read(t, st, "hugefence"); len(got) != len(all) {
		t.Fatalf("an old epoch's write shows through the split fence: %d items, want %d", len(got), len(all))
	}
}
