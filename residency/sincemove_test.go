package residency

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// failClaimOnce fails the next claim of one session (a timeout).
type failClaimOnce struct {
	*memstore.Store
	mu      sync.Mutex
	session string
}

func (f *failClaimOnce) Claim(ctx context.Context, s string, prev store.Owner, node string, ttl time.Duration) (bool, store.Owner, error) {
	f.mu.Lock()
	fail := s == f.session
	if fail {
		f.session = ""
	}
	f.mu.Unlock()
	if fail {
		return false, store.Owner{}, memstore.ErrInjected
	}
	return f.Store.Claim(ctx, s, prev, node, ttl)
}

// A recovery that could not settle every session leaves the node fenced; the
// next one settles the rest. The sessions the first one settled are not
// claimed again, so the second keeps the lease's Since before their claims.
// Before, it moved Since past them: a peer creating one of them (nothing
// persisted yet) then took the node's record for void and started the
// session over it, while the node, live and unfenced, still held it. Two
// owners.
func TestSecondRecoveryAttemptKeepsSinceBeforeItsSettledClaims(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	fx := &failClaimOnce{Store: st}
	cfg := func(id string) Config {
		return Config{NodeID: id, LeaseTTL: 10 * time.Minute, MaxClockSkew: time.Millisecond,
			Logger: slog.New(slog.DiscardHandler)}
	}
	x, y := started(t, cfg("x"), fx), started(t, cfg("y"), st)
	// Two new sessions recorded by x; their first writes have not landed.
	for _, s := range []string{"a", "b"} {
		if _, err := x.EnsureOwned(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	x.fence()
	fx.mu.Lock()
	fx.session = "b" // the first recovery cannot settle b
	fx.mu.Unlock()
	x.recover()
	if !x.Fenced() {
		t.Fatal("first recovery unfenced with b unsettled")
	}
	ea, _ := x.Epoch("a")
	time.Sleep(20 * time.Millisecond)
	x.recover() // the next renewal's recovery settles b
	if x.Fenced() {
		t.Fatal("second recovery did not unfence")
	}
	if e, ok := x.Epoch("a"); !ok || e != ea {
		t.Fatalf("x holds a: %v at %d, want %d", ok, e, ea)
	}
	// A peer's host creates a with nothing of x's persisted.
	e, err := y.EnsureOwned(ctx, "a")
	var oe *OwnedElsewhereError
	if !errors.As(err, &oe) {
		o, _ := st.Owner("a")
		xe, xok := x.Epoch("a")
		t.Fatalf("y.EnsureOwned(a) = %d, %v: row now %+v, while x (live, unfenced) still holds a at %d (%v)", e, err, o, xe, xok)
	}
}
