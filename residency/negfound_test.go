package residency

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
)

// Node b asks for s just after node a ended it (ErrNotFound, remembered in
// b's negative cache); a starts s afresh at once. The host on b, told
// ErrNotFound ("the host may create it here"), creates s: EnsureOwned finds
// a's live record and answers *OwnedElsewhereError ("the host created a
// session whose ID is taken, and must adopt it first"). b now knows s exists,
// yet Adopt kept answering ErrNotFound from the stale negative entry (and
// Peek too) until the cache's TTL ran out: the host was sent back and forth
// between "create it" and "adopt it", and an existing session was reported
// not found. A creation that finds the session's row must forget the entry,
// as a creation that records it does.
func TestARowFoundByACreationClearsTheNegativeEntry(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	cfg := func(id string) Config {
		return Config{NodeID: id, LeaseTTL: 10 * time.Minute, NegativeCacheTTL: time.Minute}
	}
	a := started(t, cfg("a"), st)
	b := started(t, cfg("b"), st)
	if _, err := a.EnsureOwned(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if err := a.Ended(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Adopt(ctx, "s", AdoptOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b adopts an ended session: %v, want ErrNotFound", err)
	}
	if _, err := a.EnsureOwned(ctx, "s"); err != nil { // started afresh on a
		t.Fatal(err)
	}
	var oe *OwnedElsewhereError
	if _, err := b.EnsureOwned(ctx, "s"); !errors.As(err, &oe) || oe.Owner != "a" {
		t.Fatalf("b creates s: %v, want *OwnedElsewhereError naming a", err)
	}
	_, aerr := b.Adopt(ctx, "s", AdoptOptions{})
	_, perr := b.Peek(ctx, "s")
	if errors.Is(aerr, ErrNotFound) || errors.Is(perr, ErrNotFound) {
		o, _ := st.Owner("s")
		t.Fatalf("b was just told s is owned by a (row %+v), yet Adopt answers %v and Peek %v", o, aerr, perr)
	}
}
