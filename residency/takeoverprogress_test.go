package residency

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// stalledClaims is a store whose claims hang until release (Cassandra
// slow or unreachable).
type stalledClaims struct {
	*memstore.Store
	release chan struct{}
}

func (s *stalledClaims) Claim(ctx context.Context, session string, prev store.Owner, node string, ttl time.Duration) (bool, store.Owner, error) {
	<-s.release
	return s.Store.Claim(ctx, session, prev, node, ttl)
}

// Progress is called about once a second, adoptions finishing or not: it
// was called only when one finished, so a takeover whose claims stalled
// went quiet, and its operator could not tell it from a hung one. Found by
// review.
func TestTakeoverProgressKeepsComingWhileClaimsStall(t *testing.T) {
	ctx := context.Background()
	st := &stalledClaims{Store: memstore.New(), release: make(chan struct{})}
	if ok, _, err := st.CreateOwner(ctx, "s", "dead", 0, time.Hour); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := st.IndexOwner(ctx, "dead", "s", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	m := started(t, Config{NodeID: "b", LeaseTTL: 10 * time.Minute}, st)
	var calls atomic.Int64
	done := make(chan TakeoverReport, 1)
	go func() {
		rep, _ := m.Takeover(ctx, "dead", TakeoverOptions{Progress: func(TakeoverReport) { calls.Add(1) }})
		done <- rep
	}()
	time.Sleep(2500 * time.Millisecond)
	got := calls.Load()
	close(st.release)
	rep := <-done
	if got < 2 {
		t.Errorf("Progress called %d times in 2.5 s of stalled claims, want about once a second", got)
	}
	if rep.Adopted != 1 {
		t.Errorf("takeover after the stall: %+v, want the session adopted", rep)
	}
}

// slowMoves is a store whose owner-index moves take a while.
type slowMoves struct {
	*memstore.Store
	took time.Duration
}

func (s *slowMoves) MoveIndex(ctx context.Context, from, to string, moved []store.Owned, stale []string, ttl time.Duration) error {
	time.Sleep(s.took)
	return s.Store.MoveIndex(ctx, from, to, moved, stale, ttl)
}

// The report's duration was written as the takeover returned without the
// lock under which Progress copies the report: a Progress tick during the
// takeover's last index move read the report as it was written (a data
// race, which -race reports).
func TestTakeoverProgressDoesNotRaceTheFinalReport(t *testing.T) {
	ctx := context.Background()
	st := &slowMoves{Store: memstore.New(), took: 1200 * time.Millisecond}
	if ok, _, err := st.CreateOwner(ctx, "s", "dead", 0, time.Hour); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := st.IndexOwner(ctx, "dead", "s", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	m := started(t, Config{NodeID: "b", LeaseTTL: 10 * time.Minute}, st)
	var last atomic.Int64
	rep, err := m.Takeover(ctx, "dead", TakeoverOptions{Progress: func(r TakeoverReport) { last.Store(int64(r.Adopted)) }})
	if err != nil || rep.Adopted != 1 {
		t.Fatalf("takeover: %+v, %v; want the session adopted", rep, err)
	}
	if last.Load() != 1 {
		t.Fatalf("Progress during the last index move reported %d adopted, want 1", last.Load())
	}
}
