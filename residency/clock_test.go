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
	lastSent, stopped, seenDead := stallRenewals(t, slow, a, b, "stepped")
	if hold := ttl - DefaultMaxClockSkew; stopped.Sub(lastSent) < hold || stopped.Sub(lastSent) > hold+100*time.Millisecond {
		t.Fatalf("the node stopped acting %v after its last renewal was sent, want %v", stopped.Sub(lastSent), hold)
	}
	if !seenDead.After(stopped) {
		t.Fatalf("a peer saw the lease expire %v before the node stopped", stopped.Sub(seenDead))
	}
	t.Logf("node stopped %v after its last renewal; the peer saw it gone %v later",
		stopped.Sub(lastSent).Round(time.Millisecond), seenDead.Sub(stopped).Round(time.Millisecond))
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
	lastSent, stopped, seenDead := stallRenewals(t, slow, a, b, "owner")
	if life := stopped.Sub(lastSent); life < ttl-skew || life > ttl-skew+100*time.Millisecond {
		t.Errorf("the node stopped acting %v after its last renewal was sent, want %v (the TTL less the skew)", life, ttl-skew)
	}
	if !seenDead.After(stopped) {
		t.Errorf("a peer saw the lease expire %v before the node stopped", stopped.Sub(seenDead))
	}
	// The renewal reaches Cassandra a little after it was sent; the skew
	// (400 ms) would show in full.
	if wait := seenDead.Sub(lastSent); wait > ttl+skew/2 {
		t.Errorf("the peer saw the lease end %v after its last renewal was sent, want about the TTL (%v), not the TTL + the skew", wait, ttl)
	}
	t.Logf("node stopped %v after its last renewal; the peer saw it gone %v after it",
		stopped.Sub(lastSent).Round(time.Millisecond), seenDead.Sub(lastSent).Round(time.Millisecond))
}

// stallRenewals stalls a's renewals (through slow) and returns when a last
// sent one, when a stopped acting as owner and when peer b first saw node's
// lease expire, polling both every 2 ms.
func stallRenewals(t *testing.T, slow *slowRenewals, a, b *Manager, node string) (lastSent, stopped, seenDead time.Time) {
	t.Helper()
	slow.delay.Store(int64(time.Minute))
	deadline := time.Now().Add(15 * time.Second)
	// The node's stop is watched on its own: a peer's read of the lease
	// takes a round trip to Cassandra, which on a loaded machine delayed
	// the next look at the node past the 100 ms the callers allow.
	stopCh := make(chan time.Time, 1)
	go func() {
		for time.Now().Before(deadline) {
			if !a.LeaseValid() {
				stopCh <- time.Now()
				return
			}
			time.Sleep(time.Millisecond)
		}
		close(stopCh)
	}()
	for seenDead.IsZero() && time.Now().Before(deadline) {
		if live, err := b.Live(context.Background(), node); err != nil {
			t.Fatal(err)
		} else if !live {
			seenDead = time.Now()
		}
		time.Sleep(2 * time.Millisecond)
	}
	stopped = <-stopCh
	if stopped.IsZero() || seenDead.IsZero() {
		t.Fatalf("stopped at %v, seen dead at %v", stopped, seenDead)
	}
	return a.started.Add(time.Duration(a.lastRenew.Load())), stopped, seenDead
}
