package residency_test

import (
	"context"
	"testing"
	"time"

	"github.com/holdover/holdover/residency"
)

// A node that has renewed its lease for many TTLs still holds it under its
// incarnation, so a graceful Close drops it and peers see the node gone at
// once. Renewals that left the incarnation alone let the cell written when
// the lease was taken expire: Close then deleted nothing.
func TestLeaseKeepsItsHolderAcrossRenewals(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	st := c.store(false)
	m, err := residency.New(residency.Config{NodeID: "long-lived", LeaseTTL: time.Second}, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // the row's first TTL is 3 s
	l, found, err := st.ReadLease(ctx, "long-lived")
	if err != nil || !found || l.Incarnation == "" {
		t.Fatalf("after 5 s: %+v found=%v err=%v, want a lease naming its holder", l, found, err)
	}
	if err := m.Close(ctx, true); err != nil {
		t.Fatal(err)
	}
	if l, found, err := st.ReadLease(ctx, "long-lived"); err != nil || found {
		t.Fatalf("after a graceful Close: %+v found=%v err=%v, want the lease dropped", l, found, err)
	}
}
