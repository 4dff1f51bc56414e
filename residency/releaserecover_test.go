package residency

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// releaseGate holds the first call of op until release, once it is armed.
type releaseGate struct {
	*memstore.Store
	op      string
	armed   chan struct{} // closed: the next call of op is held
	lose    bool          // the held call's reply is lost (an error)
	entered chan struct{}
	release chan struct{}
}

// hold holds the first call of op once armed, and reports whether it did.
func (g *releaseGate) hold(op string) bool {
	select {
	case <-g.armed:
	default:
		return false
	}
	if op != g.op {
		return false
	}
	select {
	case <-g.entered:
		return false // held once already
	default:
	}
	close(g.entered)
	<-g.release
	return true
}

func (g *releaseGate) Release(ctx context.Context, s, node string, epoch uint64, ttl time.Duration) (bool, error) {
	held := g.hold("release")
	applied, err := g.Store.Release(ctx, s, node, epoch, ttl)
	if held && g.lose {
		return false, memstore.ErrInjected
	}
	return applied, err
}

func (g *releaseGate) Claim(ctx context.Context, s string, prev store.Owner, node string, ttl time.Duration) (bool, store.Owner, error) {
	g.hold("claim")
	return g.Store.Claim(ctx, s, prev, node, ttl)
}

// A graceful shutdown's ReleaseAll that races the recovery of a fence
// (which moves every session's row one epoch up) left the row claimed by
// this node, not released: the release went at the epoch the recovery had
// moved the row from (it did not apply), or it landed first and the
// recovery's claim then took the released row back. The session stayed
// held, or was forgotten under a live claim, and the next adopter paid a
// fence and, while the lease lived, waited for it. Either way the row now
// ends released at the epoch the recovery moved it to.
func TestAReleaseRacingARecoveryLeavesTheRowReleased(t *testing.T) {
	for _, tc := range []struct {
		first string
		lose  bool
	}{{"recovery", false}, {"release", false}, {"recovery", true}} {
		first := tc.first
		name := first + " first"
		if tc.lose {
			name += ", release reply lost"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := memstore.New()
			g := &releaseGate{Store: st, armed: make(chan struct{}), entered: make(chan struct{}), release: make(chan struct{}), lose: tc.lose}
			g.op = map[string]string{"recovery": "release", "release": "claim"}[first]
			m, err := New(Config{NodeID: "a", LeaseTTL: 10 * time.Minute, Logger: slog.New(slog.DiscardHandler)}, g)
			if err != nil {
				t.Fatal(err)
			}
			defer m.bgCancel()
			takeLeaseByHand(t, m, st)
			if _, err := m.EnsureOwned(ctx, "s"); err != nil {
				t.Fatal(err)
			}
			m.fence()
			close(g.armed)
			released := make(chan error, 1)
			recovered := make(chan struct{})
			if first == "recovery" {
				// ReleaseAll sends its release at epoch 1; the recovery
				// moves the row to epoch 2 before it lands.
				go func() { _, err := m.ReleaseAll(ctx); released <- err }()
				<-g.entered
				m.recover()
				close(recovered)
				close(g.release)
			} else {
				// The recovery's claim is on its way when the release at
				// epoch 1 lands; the claim lands after it.
				go func() { m.recover(); close(recovered) }()
				<-g.entered
				_, err := m.ReleaseAll(ctx)
				released <- err
				close(g.release)
			}
			<-recovered
			if err := <-released; err != nil && !tc.lose {
				t.Fatal(err)
			}
			row, _ := st.Owner("s")
			e, held := m.Epoch("s")
			if !row.Released || row.Node != "a" || held {
				t.Fatalf("ReleaseAll racing a recovery: row %+v; held %v at %d; want the row released and the session given up", row, held, e)
			}
		})
	}
}
