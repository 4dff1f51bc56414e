package residency_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/residency"
)

// A session's own TTL (its family's, through OwnershipTTLOf) is the TTL of
// its ownership row: a short-lived family's rows expire when no node keeps
// them resident, while the other sessions' rows keep the node's TTL.
func TestOwnershipTTLOfAppliesPerSession(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	st := c.store(false)
	a := c.node("a", st, func(cfg *residency.Config) {
		cfg.OwnershipTTLOf = func(s string) time.Duration {
			if strings.HasPrefix(s, "short:") {
				return 2 * time.Second
			}
			return 0
		}
		cfg.RefreshEvery = time.Hour // nothing renews them during the test
	})
	ctx := context.Background()
	for _, s := range []string{"short:1", "long:1"} {
		if _, err := a.EnsureOwned(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(3500 * time.Millisecond)
	if o, found, err := st.ReadOwner(ctx, "short:1"); err != nil || found {
		t.Fatalf("the short family's ownership row outlived its 2s TTL: %+v found=%v err=%v", o, found, err)
	}
	if _, found, err := st.ReadOwner(ctx, "long:1"); err != nil || !found {
		t.Fatalf("a session of no family lost its ownership row: found=%v err=%v", found, err)
	}
}
