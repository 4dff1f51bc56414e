package store_test

import (
	"testing"
	"time"
)

// A release renews the whole row with its TTL, not its released flag alone.
// The row's owner and epoch were last written by the claim or by a refresh
// of the row's TTL, often long before the release (a graceful Close), so
// they ran out first, and the row then read as released by nobody at epoch
// 0: no claim could name it, and the session, its state still stored, could
// not be adopted until the flag expired too. The in-memory model, which
// renews the whole row, adopted it.
func TestAReleasedRowKeepsItsOwnerAsLongAsItsFlag(t *testing.T) {
	t.Parallel()
	st := open(t)
	c := ctx(t)
	start := time.Now()
	if created, _, err := st.CreateOwner(c, "released", "a", 0, 2*time.Second); err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	time.Sleep(time.Second)
	if ok, err := st.Release(c, "released", "a", 1, 4*time.Second); err != nil || !ok {
		t.Fatalf("release: %v %v", ok, err)
	}
	// Past the create's TTL, within the release's.
	time.Sleep(time.Until(start.Add(2200 * time.Millisecond)))
	o, found, err := st.ReadOwner(c, "released")
	if err != nil || !found || o.Node != "a" || o.Epoch != 1 || !o.Released {
		t.Fatalf("row after the claim's TTL, within the release's: %+v found=%v err=%v; want a@1 released", o, found, err)
	}
	if won, cur, err := st.Claim(c, "released", o, "b", time.Hour); err != nil || !won || cur.Epoch != 2 {
		t.Fatalf("claim of the released row: won=%v cur=%+v err=%v", won, cur, err)
	}
}
