package residency

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/store"
)

// slowRenewals delays every lease renewal by delay.
type slowRenewals struct {
	*store.Store
	delay atomic.Int64
}

func (s *slowRenewals) RenewLease(ctx context.Context, node string, ttl, grace time.Duration, since time.Time, incarnation string) error {
	select {
	case <-time.After(time.Duration(s.delay.Load())):
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.RenewLease(ctx, node, ttl, grace, since, incarnation)
}

// The node's wall clock steps back an hour, then its renewals stall. The
// lease's life is measured on the monotonic clock and stamped by Cassandra,
// so the step changes nothing: peers see the lease live, the node stops
// acting as owner LeaseTTL - MaxClockSkew after its last successful renewal
// was sent, and no peer sees the lease expire before that.
func TestLeaseIgnoresWallClockSteps(t *testing.T) {
	t.Parallel()
	open := keyspaceStores(t)
	ctx := context.Background()
	slow := &slowRenewals{Store: open(true)}
	const ttl = 2 * time.Second
	a, err := New(Config{NodeID: "stepped", LeaseTTL: ttl}, slow)
	if err != nil {
		t.Fatal(err)
	}
	a.wall = func() time.Time { return time.Now().Add(-time.Hour) }
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx, false)
	b, err := New(Config{NodeID: "peer", LeaseTTL: ttl, LeaseCacheTTL: time.Millisecond}, open(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx, false)
	time.Sleep(ttl) // renewals go on across the step
	if live, err := b.Live(ctx, "stepped"); err != nil || !live || !a.LeaseValid() {
		t.Fatalf("after the step: peer sees live=%v (%v), node valid=%v", live, err, a.LeaseValid())
	}
	// An hour's step in the stamps would show in full: a peer sees the
	// lease live about the TTL after the last renewal was sent.
	stallRenewals(t, slow, a, b, "stepped").check(t, ttl-DefaultMaxClockSkew, 50*time.Millisecond, ttl+500*time.Millisecond)
}

// The clock skew margin comes out of the owner's side: the node stops acting
// as owner LeaseTTL - MaxClockSkew after its last renewal was sent, and peers
// see its lease end LeaseTTL after that renewal, not LeaseTTL +
// MaxClockSkew, so the TTL alone bounds how long a dead node's sessions wait.
func TestPeersWaitTheTTLAlone(t *testing.T) {
	t.Parallel()
	open := keyspaceStores(t)
	ctx := context.Background()
	slow := &slowRenewals{Store: open(true)}
	const ttl, skew = 2 * time.Second, 400 * time.Millisecond
	a, err := New(Config{NodeID: "owner", LeaseTTL: ttl, MaxClockSkew: skew}, slow)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx, false)
	b, err := New(Config{NodeID: "peer", LeaseTTL: ttl, MaxClockSkew: skew, LeaseCacheTTL: time.Millisecond}, open(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx, false)
	time.Sleep(ttl / 2)
	// The renewal reaches Cassandra a little after it was sent; the skew
	// (400 ms) on the peers' side would show in full.
	stallRenewals(t, slow, a, b, "owner").check(t, ttl-skew, 50*time.Millisecond, ttl+skew/2)
}

// stalled is what stallRenewals saw of a node whose renewals stalled and of
// a peer that read its lease meanwhile. Each time is sampled, and a sample
// can be late on a loaded machine: the checks below use only the bound a
// sample proves, so a late one makes them more lenient, never wrong.
type stalled struct {
	lastSent  time.Time // when the node sent its last successful renewal
	lastValid time.Time // the last sample at which the node still acted as owner
	stopped   time.Time // the first sample at which it no longer did
	// lastLive is when the last of the peer's reads that saw the lease live
	// began: the peer judged it live at some moment after that.
	lastLive time.Time
	// validWhenSeen: when the first read that saw the lease expired
	// answered, the node still acted as owner.
	validWhenSeen bool
}

// check fails t unless the node stopped acting as owner hold after its last
// renewal was sent (tol more at most), and the peer saw the lease expire
// only once it had, and not later than peerBound after that renewal.
func (s stalled) check(t *testing.T, hold, tol, peerBound time.Duration) {
	t.Helper()
	if life := s.stopped.Sub(s.lastSent); life < hold {
		t.Errorf("the node stopped acting as owner %v after its last renewal was sent, before %v", life, hold)
	}
	if life := s.lastValid.Sub(s.lastSent); life > hold+tol {
		t.Errorf("the node still acted as owner %v after its last renewal was sent, past %v", life, hold+tol)
	}
	if s.validWhenSeen {
		t.Errorf("a peer saw the lease expire while the node still acted as owner")
	}
	if live := s.lastLive.Sub(s.lastSent); live > peerBound {
		t.Errorf("a peer's read begun %v after the last renewal was sent still saw the lease live, past %v", live, peerBound)
	}
	t.Logf("node stopped %v–%v after its last renewal; the peer last saw it live on a read begun %v after it",
		s.lastValid.Sub(s.lastSent).Round(time.Millisecond), s.stopped.Sub(s.lastSent).Round(time.Millisecond),
		s.lastLive.Sub(s.lastSent).Round(time.Millisecond))
}

// stallRenewals stalls a's renewals (through slow) and watches a on its own
// goroutine and peer b's reads of node's lease until b sees it expire.
func stallRenewals(t *testing.T, slow *slowRenewals, a, b *Manager, node string) stalled {
	t.Helper()
	slow.delay.Store(int64(time.Minute))
	deadline := time.Now().Add(15 * time.Second)
	var s stalled
	stopCh := make(chan [2]time.Time, 1)
	go func() {
		// A sample's time is taken before LeaseValid when it says valid
		// and after when it says not: each bounds the moment it judged.
		var lastValid time.Time
		for time.Now().Before(deadline) {
			before := time.Now()
			if !a.LeaseValid() {
				stopCh <- [2]time.Time{lastValid, time.Now()}
				return
			}
			lastValid = before
			time.Sleep(time.Millisecond)
		}
		close(stopCh)
	}()
	seen := false
	for !seen && time.Now().Before(deadline) {
		began := time.Now()
		live, err := b.Live(context.Background(), node)
		switch {
		case err != nil:
			t.Fatal(err)
		case live:
			s.lastLive = began
		default:
			seen, s.validWhenSeen = true, a.LeaseValid()
		}
		time.Sleep(2 * time.Millisecond)
	}
	stop := <-stopCh
	s.lastValid, s.stopped = stop[0], stop[1]
	if s.stopped.IsZero() || !seen {
		t.Fatalf("stopped at %v, seen dead: %v", s.stopped, seen)
	}
	s.lastSent = a.started.Add(time.Duration(a.lastRenew.Load()))
	return s
}
