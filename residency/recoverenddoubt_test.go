package residency

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
)

// An End whose record lost its reply (applied) leaves the session held at
// its old epoch, in doubt, and the adapter's next flush records the End
// again and owns the session afresh, keeping the changes committed after
// the End. A recovery after a fence meanwhile found the row ended (its
// compare-and-set on the old epoch fails), took that for a peer's adoption,
// discarded the buffer's unwritten changes and reported the session lost:
// acknowledged changes of a session nobody else owns (I1). The refresh
// loop already kept such a session; the recovery now keeps it too.
func TestRecoveryKeepsASessionWhoseEndIsInDoubt(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	f := &loseEndOnce{Store: st, session: "s"}
	buf := &discardLog{pending: []string{"s"}}
	var lost []string
	m, err := New(Config{NodeID: "a", LeaseTTL: 10 * time.Minute, Flusher: buf,
		OnRecovered: func(l []string) { lost = l }, Logger: slog.New(slog.DiscardHandler)}, f)
	if err != nil {
		t.Fatal(err)
	}
	defer m.bgCancel()
	takeLeaseByHand(t, m, st)
	if _, err := m.EnsureOwned(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if err := m.Ended(ctx, "s"); err == nil {
		t.Fatal("the End's lost reply was not reported")
	}
	if !m.EndInDoubt("s") {
		t.Fatal("End not in doubt")
	}
	m.fence()
	m.recover()
	if m.Fenced() {
		t.Fatal("the recovery did not unfence the node")
	}
	if buf.has("s") || slices.Contains(lost, "s") {
		t.Fatalf("the recovery discarded the unwritten changes of a session whose End is in doubt (reported lost: %v); no node adopted it", lost)
	}
	if !m.EndInDoubt("s") {
		t.Fatal("the End is no longer in doubt, yet nobody recorded it again")
	}
}
