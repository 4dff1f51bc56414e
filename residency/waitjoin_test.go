package residency

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// Adopt's doc: "concurrent calls for one ID share one lookup (... but not
// its context: a caller whose lookup ended because the first caller's
// context did looks again)". A first caller that waits (AdoptOptions.Wait)
// for a dead owner's lease and whose context ends during the wait ends the
// shared lookup; a second caller whose context lives must look again (and
// wait, and adopt once the lease ends), not return the first caller's
// refusal.
func TestWaitingLeaderCancelledJoinerLooksAgain(t *testing.T) {
	ctx := context.Background()
	// x's last renewal: its lease ends about 1.5 s from now.
	m, lctx, cancel := waitingLeader(t, 1500*time.Millisecond)
	leader := make(chan error, 1)
	go func() {
		_, err := m.Adopt(lctx, "s", AdoptOptions{Wait: 10 * time.Second})
		leader <- err
	}()
	refused(t, m)
	type res struct {
		a   *Adopted
		err error
	}
	joiner := make(chan res, 1)
	go func() {
		a, err := m.Adopt(ctx, "s", AdoptOptions{Wait: 10 * time.Second})
		joiner <- res{a, err}
	}()
	time.Sleep(100 * time.Millisecond) // the joiner joins the leader's wait
	cancel()
	lerr := <-leader
	select {
	case r := <-joiner:
		if r.err != nil {
			var oe *OwnedElsewhereError
			t.Fatalf("leader's context cancelled during its wait (leader got %v); the joiner, whose context lives, got %v (OwnedElsewhere: %v) instead of looking again and adopting when x's lease ends", lerr, r.err, errors.As(r.err, &oe))
		}
	case <-time.After(8 * time.Second):
		t.Fatal("joiner did not return")
	}
}

// A caller that joins an adoption already under way (one lookup per session
// at a time) is bounded by its own context, not the leader's: an Adopt whose
// request was cancelled returns at once with its context's error while the
// leader goes on waiting for the owner's lease. It used to stay joined for
// the whole of the leader's wait (here 10 s).
func TestAJoinerReturnsWhenItsOwnContextEnds(t *testing.T) {
	ctx := context.Background()
	// x's lease ends about 10 s from now: the leader waits for it.
	m, lctx, cancelLeader := waitingLeader(t, 10*time.Second)
	defer cancelLeader()
	leader := make(chan error, 1)
	go func() {
		_, err := m.Adopt(lctx, "s", AdoptOptions{Wait: 20 * time.Second})
		leader <- err
	}()
	refused(t, m)
	jctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := m.Adopt(jctx, "s", AdoptOptions{Wait: 20 * time.Second})
	if took := time.Since(began); !errors.Is(err, context.DeadlineExceeded) || took > 2*time.Second {
		t.Fatalf("a joiner whose context ends after 200 ms: %v after %v, want its context's error at once", err, took)
	}
	select {
	case err := <-leader:
		t.Fatalf("the leader ended with the joiner: %v", err)
	default:
	}
}

// waitingLeader stores session "s" of node x, whose lease ends lease from
// now, and returns node b's manager and a context for the adoption that will
// lead (wait for x's lease), with its cancel.
func waitingLeader(t *testing.T, lease time.Duration) (*Manager, context.Context, context.CancelFunc) {
	t.Helper()
	ctx := context.Background()
	st := memstore.New()
	if ok, _, err := st.CreateOwner(ctx, "s", "x", 0, time.Hour); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := st.Fence(ctx, "s", 1, []store.Item{{Key: "k", Value: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	if err := st.RenewLease(ctx, "x", lease, 10*time.Millisecond, time.Now(), "incx"); err != nil {
		t.Fatal(err)
	}
	m := started(t, Config{NodeID: "b", LeaseTTL: 10 * time.Minute, MaxClockSkew: 10 * time.Millisecond}, st)
	lctx, cancel := context.WithCancel(ctx)
	return m, lctx, cancel
}

// refused waits until m has refused an adoption because a live node owns
// the session (the leader waits now).
func refused(t *testing.T, m *Manager) {
	t.Helper()
	for giveUp := time.Now().Add(5 * time.Second); m.Stats().OwnedElsewhere == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(giveUp) {
			t.Fatal("the leader was not refused")
		}
	}
}
