package residency

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
)

// An adoption with Fresh looks in the store even when the negative cache
// holds the session absent: a peer may have recorded it since, and a host
// that creates on ErrNotFound would create over it.
func TestAFreshAdoptionLooksPastTheNegativeCache(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	m := started(t, Config{NodeID: "b", LeaseTTL: 10 * time.Minute, NegativeCacheTTL: time.Minute}, st)
	if _, err := m.Adopt(ctx, "s", AdoptOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("first lookup: %v, want ErrNotFound", err)
	}
	// A live peer records the session.
	if err := st.RenewLease(ctx, "a", time.Minute, 10*time.Millisecond, time.Now(), "inca"); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := st.CreateOwner(ctx, "s", "a", 0, time.Hour); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, err := m.Adopt(ctx, "s", AdoptOptions{}); !errors.Is(err, ErrNotFound) || m.Stats().NegativeHits != 1 {
		t.Fatalf("cached lookup: %v, negative hits %d; want the cache's ErrNotFound", err, m.Stats().NegativeHits)
	}
	var oe *OwnedElsewhereError
	if _, err := m.Adopt(ctx, "s", AdoptOptions{Fresh: true}); !errors.As(err, &oe) || oe.Owner != "a" || !oe.Live {
		t.Fatalf("fresh lookup: %v, want owned by live a", err)
	}
}
