package residency

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// slowRecovery: renewals fail while renewFails; then the recovery's lease
// check (hang "check") or its claims (hang "claim") hang until their context
// ends, as on a stalled Cassandra.
type slowRecovery struct {
	*memstore.Store
	hang       string
	renewFails atomic.Bool
	hanging    chan struct{}
	once       atomic.Bool
}

func (s *slowRecovery) RenewLease(ctx context.Context, node string, ttl, grace time.Duration, since time.Time, inc string) error {
	if s.renewFails.Load() {
		return errors.New("injected: unreachable")
	}
	return s.Store.RenewLease(ctx, node, ttl, grace, since, inc)
}

// stall hangs until ctx ends, once the test has seen the recovery get here.
func (s *slowRecovery) stall(ctx context.Context) error {
	if s.once.CompareAndSwap(false, true) {
		close(s.hanging)
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s *slowRecovery) CheckLease(ctx context.Context, node, inc string, ttl, grace time.Duration, since time.Time) (bool, store.Lease, error) {
	if s.hang == "check" {
		return false, store.Lease{}, s.stall(ctx)
	}
	return s.Store.CheckLease(ctx, node, inc, ttl, grace, since)
}

func (s *slowRecovery) Claim(ctx context.Context, session string, prev store.Owner, node string, ttl time.Duration) (bool, store.Owner, error) {
	if s.hang == "claim" && !s.renewFails.Load() {
		return false, store.Owner{}, s.stall(ctx)
	}
	return s.Store.Claim(ctx, session, prev, node, ttl)
}

// Close must not wait for a recovery's requests: the lease goroutine checked
// the lease and claimed the sessions on contexts Close never ended, so a
// Close during a recovery on a stalled Cassandra took up to two renewal
// periods whatever its context said (here 2 s for 50 ms; over 200 s with a
// 10-minute lease). Found by review.
func TestCloseEndsARecoveryUnderWay(t *testing.T) {
	for _, hang := range []string{"check", "claim"} {
		t.Run(hang, func(t *testing.T) {
			st := &slowRecovery{Store: memstore.New(), hang: hang, hanging: make(chan struct{})}
			cfg := Config{NodeID: "a", LeaseTTL: 4 * time.Second, LeaseRenew: 2 * time.Second}
			m := started(t, cfg, st)
			if _, err := m.EnsureOwned(context.Background(), "s"); err != nil { // a session for the recovery to claim
				t.Fatal(err)
			}
			st.renewFails.Store(true)
			for deadline := time.Now().Add(10 * time.Second); !m.Fenced(); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no fence")
				}
			}
			st.renewFails.Store(false)
			select {
			case <-st.hanging:
			case <-time.After(10 * time.Second):
				t.Fatalf("the recovery's %s never ran", hang)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			began := time.Now()
			err := m.Close(ctx, false)
			if took := time.Since(began); took > 500*time.Millisecond {
				t.Fatalf("Close with a 50ms context during the recovery's %s took %s (err %v)", hang, took.Round(time.Millisecond), err)
			}
		})
	}
}
