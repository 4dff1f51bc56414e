package residency

import (
	"context"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
)

// slowStateRefresh takes longer than the lease's renewal interval to renew
// a session's items (a session of many items on a busy node), unless its
// context ends first.
type slowStateRefresh struct {
	*memstore.Store
	took time.Duration
}

func (s *slowStateRefresh) RefreshState(ctx context.Context, session string, minRemaining time.Duration) (int, error) {
	select {
	case <-time.After(s.took):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return s.Store.RefreshState(ctx, session, minRemaining)
}

// The renewal of a session's items is not bounded by LeaseRenew, which
// bounds the ownership row's compare-and-set: it reads the whole session and
// rewrites what is due. Bounded so, it failed every time for a session that
// took longer, and the items of a resident session expired.
func TestARefreshSlowerThanALeaseRenewalSucceeds(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	f := &slowStateRefresh{Store: st, took: 600 * time.Millisecond}
	m := started(t, Config{NodeID: "a", LeaseTTL: time.Second, MaxClockSkew: time.Millisecond,
		OwnershipTTL: 60 * time.Millisecond, RefreshEvery: 5 * time.Millisecond}, f)
	if m.cfg.LeaseRenew >= f.took {
		t.Fatalf("LeaseRenew %v not below the refresh's %v: the test proves nothing", m.cfg.LeaseRenew, f.took)
	}
	if _, err := m.EnsureOwned(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for m.Stats().Refreshes == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no refresh succeeded in 10 s (each takes %v, LeaseRenew %v)", f.took, m.cfg.LeaseRenew)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
