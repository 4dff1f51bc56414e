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

// slowCheck: renewals fail while renewFails; CheckLease (recovery's first
// step) hangs until its context ends, as on a stalled Cassandra.
type slowCheck struct {
	*memstore.Store
	renewFails atomic.Bool
	checking   chan struct{}
	once       atomic.Bool
}

func (s *slowCheck) RenewLease(ctx context.Context, node string, ttl, grace time.Duration, since time.Time, inc string) error {
	if s.renewFails.Load() {
		return errors.New("injected: unreachable")
	}
	return s.Store.RenewLease(ctx, node, ttl, grace, since, inc)
}

func (s *slowCheck) CheckLease(ctx context.Context, node, inc string, ttl, grace time.Duration, since time.Time) (bool, store.Lease, error) {
	if s.once.CompareAndSwap(false, true) {
		close(s.checking)
	}
	<-ctx.Done()
	return false, store.Lease{}, ctx.Err()
}

// Close must not wait for a recovery's requests: the lease goroutine checked
// the lease and claimed the sessions on contexts Close never ended, so a
// Close during a recovery on a stalled Cassandra took up to two renewal
// periods whatever its context said (here 2 s for 50 ms; over 200 s with a
// 10-minute lease). Found by review.
func TestCloseEndsARecoveryUnderWay(t *testing.T) {
	st := &slowCheck{Store: memstore.New(), checking: make(chan struct{})}
	cfg := Config{NodeID: "a", LeaseTTL: 4 * time.Second, LeaseRenew: 2 * time.Second}
	m := started(t, cfg, st)
	st.renewFails.Store(true)
	for deadline := time.Now().Add(10 * time.Second); !m.Fenced(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no fence")
		}
	}
	st.renewFails.Store(false)
	select {
	case <-st.checking:
	case <-time.After(10 * time.Second):
		t.Fatal("no recovery")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := m.Close(ctx, false)
	if took := time.Since(began); took > 500*time.Millisecond {
		t.Fatalf("Close with a 50ms context took %s (err %v)", took.Round(time.Millisecond), err)
	}
}
