package residency

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// createGate holds the creations of sessions named "held-..." until released,
// and makes those named "slow-..." take slow.
type createGate struct {
	*memstore.Store
	slow    time.Duration
	mu      sync.Mutex
	entered int
	release chan struct{}
}

func (g *createGate) CreateOwner(ctx context.Context, s, node string, ended uint64, ttl time.Duration) (bool, store.Owner, error) {
	switch {
	case strings.HasPrefix(s, "held-"):
		g.mu.Lock()
		g.entered++
		g.mu.Unlock()
		<-g.release
	case strings.HasPrefix(s, "slow-"):
		time.Sleep(g.slow)
	}
	return g.Store.CreateOwner(ctx, s, node, ended, ttl)
}

func (g *createGate) holding() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.entered
}

// admitting starts n creations of held sessions on m and waits until they
// are all in the store.
func admitting(t *testing.T, m *Manager, g *createGate, n int) *sync.WaitGroup {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.EnsureOwned(context.Background(), "held-"+string(rune('a'+i))); err != nil {
				t.Error(err)
			}
		}()
	}
	for g.holding() < n {
		time.Sleep(time.Millisecond)
	}
	return &wg
}

func admitConfig() Config {
	// 64 slots: the queue ahead fits one round; a 100 ms budget; a lead
	// short enough that admissions stop counting as queued at once.
	return Config{NodeID: "a", LeaseTTL: 10 * time.Minute, MaxConcurrentCreates: 64,
		CreationBudget: 100 * time.Millisecond, AdmitLead: time.Millisecond}
}

// Creations that stall after fast ones (Cassandra slowed down at once) stop
// the admission of new sessions as soon as they have made no progress for
// longer than the budget: the estimate was the fast creations' average, so
// new sessions kept being admitted behind creations that had not moved for
// seconds, to be acknowledged and lost if the node failed before they were
// written.
func TestStalledCreationsStopAdmissionsAtOnce(t *testing.T) {
	g := &createGate{Store: memstore.New(), release: make(chan struct{})}
	m := started(t, admitConfig(), g)
	for _, s := range []string{"fast-1", "fast-2", "fast-3"} {
		if _, err := m.EnsureOwned(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	wg := admitting(t, m, g, 4)
	defer wg.Wait()
	defer close(g.release)
	if !m.AdmitNew("fresh-1") {
		t.Fatal("a new session refused behind four creations that have just started, with fast creations before")
	}
	time.Sleep(150 * time.Millisecond) // longer than the budget, and nothing ends
	if m.AdmitNew("fresh-2") {
		t.Fatal("a new session admitted behind creations that have made no progress for longer than the 100 ms budget")
	}
}

// A creation slower than the estimate raises it at once: after fast ones,
// one 300 ms creation shows the store has slowed, and a session that would
// queue behind creations in flight is refused rather than admitted on the
// fast average (an eighth of the way up, about 40 ms, which a 100 ms budget
// admitted).
func TestASlowCreationRaisesTheEstimateAtOnce(t *testing.T) {
	g := &createGate{Store: memstore.New(), release: make(chan struct{}), slow: 300 * time.Millisecond}
	m := started(t, admitConfig(), g)
	for _, s := range []string{"fast-1", "fast-2", "slow-1"} {
		if _, err := m.EnsureOwned(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	wg := admitting(t, m, g, 1)
	defer wg.Wait()
	defer close(g.release)
	if m.AdmitNew("fresh") {
		t.Fatalf("a new session admitted behind a creation in flight although the last creation took 300 ms, over the 100 ms budget (estimate %v)", time.Duration(m.createNS.Load()))
	}
}

// serialGate is createGate whose serial reads (the admission probe's) take
// serial each.
type serialGate struct {
	*createGate
	serial time.Duration
}

func (g *serialGate) ReadOwnerSerial(ctx context.Context, s string) (store.Owner, bool, error) {
	time.Sleep(g.serial)
	return g.Store.ReadOwnerSerial(ctx, s)
}

// With nothing queued, a new session is refused while a single creation is
// estimated to outlast its budget: it used to be admitted anyway, one at a
// time to keep the estimate measured, and a burst run by hand lost such a
// session (acknowledged alone while creations took over half a second, its
// node failed 580 ms later, before its creation ended). A probe that acknowledges nothing
// (serial reads) measures the store instead: once it is fast again, new
// sessions are admitted; while it is slow, they stay refused.
func TestASlowEstimateAdmitsNothingUntilAProbeFindsTheStoreFast(t *testing.T) {
	for _, tc := range []struct {
		name   string
		serial time.Duration
		admit  bool
	}{{"fast store", 0, true}, {"slow store", 300 * time.Millisecond, false}} {
		t.Run(tc.name, func(t *testing.T) {
			g := &serialGate{createGate: &createGate{Store: memstore.New(), release: make(chan struct{}), slow: 300 * time.Millisecond}, serial: tc.serial}
			m := started(t, admitConfig(), g)
			if _, err := m.EnsureOwned(context.Background(), "slow-1"); err != nil {
				t.Fatal(err)
			}
			if m.AdmitNew("fresh") {
				t.Fatal("a new session admitted with nothing queued while a creation is estimated at 300 ms, over the 100 ms budget")
			}
			deadline := time.Now().Add(time.Second)
			for m.probing.Load() && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if got := m.AdmitNew("fresh"); got != tc.admit {
				t.Fatalf("after the probe (estimate %v, %d probe reads) admitted=%v, want %v",
					time.Duration(m.createNS.Load()), m.Stats().CreationProbes, got, tc.admit)
			}
			if n := m.Stats().CreationProbes; n == 0 || n > probeReads {
				t.Fatalf("%d probe reads, want 1 to %d", n, probeReads)
			}
		})
	}
}

// One creation far slower than the budget (a stall of a few hundred
// milliseconds against a 40 ms budget) raised the estimate to its own
// latency, and the probe's reads, each lowering it by an eighth of the
// difference, left it above the budget after all of probeReads had found
// the store fast: new sessions stayed refused until further refusals had
// run more probes. A probe whose every read fits the budget shows the store
// fast again, and new sessions are admitted after it.
func TestAProbeThatFindsTheStoreFastAdmitsAfterAVerySlowCreation(t *testing.T) {
	g := &serialGate{createGate: &createGate{Store: memstore.New(), release: make(chan struct{}), slow: 500 * time.Millisecond}}
	cfg := admitConfig()
	cfg.CreationBudget = 40 * time.Millisecond
	m := started(t, cfg, g)
	if _, err := m.EnsureOwned(context.Background(), "slow-1"); err != nil {
		t.Fatal(err)
	}
	if m.AdmitNew("fresh") {
		t.Fatal("a new session admitted while a creation is estimated at 500 ms, over the 40 ms budget")
	}
	deadline := time.Now().Add(time.Second)
	for m.probing.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	probes := m.Stats().CreationProbes
	if !m.AdmitNew("fresh") {
		t.Fatalf("a new session refused after a probe of %d fast reads (estimate %v, budget 40ms)", probes, time.Duration(m.createNS.Load()))
	}
}
