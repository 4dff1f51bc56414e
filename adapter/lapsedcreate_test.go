package adapter

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// lapseGate wraps the store residency talks to: while lapse is set, lease
// renewals fail (the node fences once its lease runs out), and CreateOwner
// of hold waits, once begun (told on holding), until release is closed.
type lapseGate struct {
	residency.Store
	lapse   atomic.Bool
	hold    string
	holding chan struct{}
	release chan struct{}
}

func (g *lapseGate) RenewLease(ctx context.Context, node string, ttl, grace time.Duration, since time.Time, incarnation string) error {
	if g.lapse.Load() {
		return errors.New("renewal lost")
	}
	return g.Store.RenewLease(ctx, node, ttl, grace, since, incarnation)
}

func (g *lapseGate) CreateOwner(ctx context.Context, session, node string, ended uint64, ttl time.Duration) (bool, store.Owner, error) {
	if session == g.hold {
		close(g.holding)
		<-g.release
	}
	return g.Store.CreateOwner(ctx, session, node, ended, ttl)
}

// hookLog records the fence, recovery and drop hooks.
type hookLog struct {
	mu               sync.Mutex
	fenced, lost     []string
	dropped          []string
	droppedErrs      []error
	recovered        chan struct{}
	recoveredClosing sync.Once
}

func (l *hookLog) hooks() Hooks {
	return Hooks{
		OnFenced: func(s []string) { l.mu.Lock(); l.fenced = append(l.fenced, s...); l.mu.Unlock() },
		OnRecovered: func(s []string) {
			l.mu.Lock()
			l.lost = append(l.lost, s...)
			l.mu.Unlock()
			l.recoveredClosing.Do(func() { close(l.recovered) })
		},
		OnDropped: func(s string, _ int, err error) {
			l.mu.Lock()
			l.dropped, l.droppedErrs = append(l.dropped, s), append(l.droppedErrs, err)
			l.mu.Unlock()
		},
	}
}

// A new session whose ownership record was on its way when the node fenced
// is discarded by the fence, which tells the host so: OnFenced lists it, and
// OnRecovered lists it as lost. When the record came back (as
// ErrCreationLapsed), the first write waiting for it was dropped and the
// session reported again, through OnDropped, which is for permanent errors
// of the store and another node's ownership: a host that drops its copy on
// OnDropped (as it must for those) lost the session it had started afresh
// after the recovery. The fence's discard is reported once.
func TestANewSessionCutShortByAFenceIsReportedOnce(t *testing.T) {
	g := &lapseGate{hold: "n", holding: make(chan struct{}), release: make(chan struct{})}
	cfg := testConfig(t, "lapsed-create", cassandratest.Keyspace(t))
	cfg.LeaseTTL = 2 * time.Second
	cfg.FlushDelay, cfg.MaxWindow = time.Hour, 2*time.Hour // only Flush writes
	log := &hookLog{recovered: make(chan struct{})}
	a := openNode(t, cfg, WithHooks(log.hooks()), withResidencyStore(func(st residency.Store) residency.Store { g.Store = st; return g }))
	defer func() {
		select {
		case <-g.release:
		default:
			close(g.release)
		}
	}()
	if err := a.Commit("n", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.holding: // the record is on its way, held
	case <-time.After(30 * time.Second):
		t.Fatal("the commit of a new session started no record")
	}
	flushed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		flushed <- a.Flush(ctx) // its write joins the record
	}()
	time.Sleep(100 * time.Millisecond)
	g.lapse.Store(true)
	for deadline := time.Now().Add(20 * time.Second); a.LeaseValid(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the node did not fence with its renewals failing")
		}
	}
	g.lapse.Store(false)
	select {
	case <-log.recovered:
	case <-time.After(20 * time.Second):
		t.Fatal("the node did not recover")
	}
	close(g.release) // the record lands now: void, ErrCreationLapsed
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); a.Stats().Buffer.Drops+a.Stats().Buffer.Discarded == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the write waiting for the record did not end")
		}
	}
	time.Sleep(100 * time.Millisecond) // hooks run after the figures are counted
	log.mu.Lock()
	defer log.mu.Unlock()
	if !slices.Contains(log.fenced, "n") || !slices.Contains(log.lost, "n") {
		t.Fatalf("OnFenced got %v, OnRecovered got %v: the test wants n reported by both", log.fenced, log.lost)
	}
	for i, s := range log.dropped {
		if s == "n" {
			t.Errorf("n, discarded by the fence and reported lost by OnRecovered, was reported again by OnDropped: %v", log.droppedErrs[i])
		}
	}
}
