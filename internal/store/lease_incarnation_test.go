package store_test

import (
	"testing"
	"time"

	"github.com/holdover/holdover/internal/store"
)

// Every cell of a renewal carries its TTL, so a lease renewed with its
// holder's incarnation keeps naming that holder long after the row's first
// TTL, and the holder can still drop it. (Renewed without, the incarnation
// written when the lease was taken expired a few seconds later: the row
// named no holder, DropLease deleted nothing and a replaced process could
// not tell it was replaced.)
func TestRenewalKeepsTheIncarnation(t *testing.T) {
	t.Parallel()
	st := open(t)
	c := ctx(t)
	const ttl, grace = time.Second, 100 * time.Millisecond // rows live 3 s
	took, _, err := st.TakeLease(c, "held", "p1", store.Lease{}, false, ttl, grace, time.Now())
	if err != nil || !took {
		t.Fatalf("take: %v %v", took, err)
	}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		if err := st.RenewLease(c, "held", ttl, grace, time.Now(), "p1"); err != nil {
			t.Fatal(err)
		}
	}
	l, found, err := st.ReadLease(c, "held")
	if err != nil || !found || l.Incarnation != "p1" {
		t.Fatalf("after 5 s of renewals: %+v found=%v err=%v, want held by p1", l, found, err)
	}
	if err := st.DropLease(c, "held", "p1"); err != nil {
		t.Fatal(err)
	}
	if l, found, err := st.ReadLease(c, "held"); err != nil || found {
		t.Fatalf("after DropLease: %+v found=%v err=%v, want gone", l, found, err)
	}
}
