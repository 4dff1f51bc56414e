package residency

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
)

// endGate holds the first EndOwner until release, and fails lease renewals
// while renewFails is set.
type endGate struct {
	*memstore.Store
	renewFails atomic.Bool
	once       sync.Once
	entered    chan struct{}
	release    chan struct{}
}

func (g *endGate) RenewLease(ctx context.Context, node string, ttl, grace time.Duration, since time.Time, inc string) error {
	if g.renewFails.Load() {
		return errors.New("injected: unreachable")
	}
	return g.Store.RenewLease(ctx, node, ttl, grace, since, inc)
}

func (g *endGate) EndOwner(ctx context.Context, s, node string, epoch uint64, ttl time.Duration) (bool, error) {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.Store.EndOwner(ctx, s, node, epoch, ttl)
}

// An End whose record is on its way while the node fences and recovers
// meets a row the recovery moved one epoch up: the record does not apply.
// Ended returned nil all the same and left the session held at the new
// epoch, its row live and refreshed: the next graceful shutdown released
// it, and a peer adopted a session that had ended (I4). Ended now records
// the End at the epoch the recovery moved it to. Found by review.
func TestAnEndRecordedAcrossARecoveryEndsTheRow(t *testing.T) {
	st := memstore.New()
	g := &endGate{Store: st, entered: make(chan struct{}), release: make(chan struct{})}
	m := started(t, Config{NodeID: "a", LeaseTTL: time.Second, LeaseRenew: 200 * time.Millisecond}, g)
	ctx := context.Background()
	if _, err := m.EnsureOwned(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { ended <- m.Ended(ctx, "s") }()
	<-g.entered
	g.renewFails.Store(true)
	for deadline := time.Now().Add(5 * time.Second); !m.Fenced(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no fence")
		}
	}
	g.renewFails.Store(false)
	for deadline := time.Now().Add(5 * time.Second); m.Fenced(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no recovery")
		}
	}
	if e, _ := m.Epoch("s"); e != 2 {
		t.Fatalf("the recovery holds s at epoch %d, want 2: the test did not run as meant", e)
	}
	close(g.release)
	err := <-ended
	row, _ := st.Owner("s")
	e, owned := m.Epoch("s")
	if err != nil || !row.Ended || owned {
		t.Fatalf("Ended across a recovery: %v; row %+v; held %v at %d; want the row ended and the session forgotten", err, row, owned, e)
	}
	_, _ = m.ReleaseAll(ctx)
	p := started(t, Config{NodeID: "p", LeaseTTL: 10 * time.Minute}, st)
	if a, err := p.Adopt(ctx, "s", AdoptOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a peer adopting the ended session: %+v, %v; want ErrNotFound", a, err)
	}
}
