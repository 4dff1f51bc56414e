package residency

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// lapseDuringRecovery holds every claim until a renewal starts; that renewal
// lets the claims answer, then answers itself a little later.
type lapseDuringRecovery struct {
	*memstore.Store
	mu    sync.Mutex
	armed bool
	gate  chan struct{}
	once  sync.Once
}

func (l *lapseDuringRecovery) isArmed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.armed
}

func (l *lapseDuringRecovery) Claim(ctx context.Context, s string, prev store.Owner, node string, ttl time.Duration) (bool, store.Owner, error) {
	if l.isArmed() {
		<-l.gate
	}
	return l.Store.Claim(ctx, s, prev, node, ttl)
}

func (l *lapseDuringRecovery) RenewLease(ctx context.Context, node string, ttl, grace time.Duration, since time.Time, inc string) error {
	if l.isArmed() {
		l.once.Do(func() { close(l.gate) })
		time.Sleep(50 * time.Millisecond) // the claims answer while the renewal is on its way
	}
	return l.Store.RenewLease(ctx, node, ttl, grace, since, inc)
}

// A renewal made by a recovery that finds the lease lapsed clears the
// sessions settled so far once the recovery's claim workers have stopped.
// Before, it cleared the map while they were still writing it (a data race
// -race reports, and a crash with "concurrent map writes"), and a claim
// answered after the clear stayed settled after the lapse, so the next
// recovery would not claim it again.
func TestRecoveryLapseClearsSettledOnceItsClaimsStop(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	w := &lapseDuringRecovery{Store: st, gate: make(chan struct{})}
	m, err := New(Config{NodeID: "a", LeaseTTL: time.Second, LeaseRenew: 20 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}, w)
	if err != nil {
		t.Fatal(err)
	}
	defer m.bgCancel()
	takeLeaseByHand(t, m, st)
	for i := range recoverParallelism + 8 {
		if _, err := m.EnsureOwned(ctx, fmt.Sprintf("s%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	m.fence()
	// The lease ran out meanwhile: the renewal the recovery makes is a lapsed one.
	m.lastRenew.Store(int64(m.elapsed() - 2*time.Second))
	w.mu.Lock()
	w.armed = true
	w.mu.Unlock()
	m.recover()
	if !m.Fenced() {
		t.Fatal("recovery across a lapse unfenced the node")
	}
}

// takeLeaseByHand gives m its lease in st without the lease goroutine: the
// test plays the lease.
func takeLeaseByHand(t *testing.T, m *Manager, st *memstore.Store) {
	t.Helper()
	m.since.Store(time.Now().UnixNano())
	if took, _, err := st.TakeLease(context.Background(), m.cfg.NodeID, m.incarnation, store.Lease{}, false, m.cfg.hold(), m.cfg.MaxClockSkew, m.sinceTime()); err != nil || !took {
		t.Fatalf("take lease: %v %v", took, err)
	}
	m.lastRenew.Store(max(int64(m.elapsed()), 1))
}
