package residency_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/residency"
)

// recoveryNode starts node "a" owning n sessions over a store whose
// ownership reads take readDelay, and returns it with channels fed by
// OnFenced and OnRecovered. Its lease lives 2 s and is renewed every 400 ms.
func recoveryNode(t *testing.T, n int, readDelay time.Duration) (*residency.Manager, *counting, chan []string, chan []string) {
	t.Helper()
	c := newCluster(t)
	cs := &counting{Store: c.store(false), readDelay: readDelay}
	fenced, recovered := make(chan []string, 4), make(chan []string, 4)
	a := c.node("a", cs, func(cfg *residency.Config) {
		cfg.LeaseTTL, cfg.LeaseRenew = 2*time.Second, 400*time.Millisecond
		cfg.OnFenced = func(s []string) { fenced <- s }
		cfg.OnRecovered = func(lost []string) { recovered <- lost }
	})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := a.EnsureOwned(ctx, fmt.Sprint("s", i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return a, cs, fenced, recovered
}

// fenceNow makes a's renewals fail until it self-fences with all n sessions.
func fenceNow(t *testing.T, cs *counting, fenced chan []string, n int) {
	t.Helper()
	cs.renewFails.Store(true)
	select {
	case s := <-fenced:
		if len(s) != n {
			t.Fatalf("fenced with %d sessions, want %d", len(s), n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no fence while renewals fail")
	}
}

// A node owning more sessions than it can check one by one within its lease
// TTL recovers from a fence all the same: the rows are read concurrently and
// the lease is renewed while they are, so it never lapses again and the node
// unfences once, keeping every session.
func TestRecoveryOutlastingTheLease(t *testing.T) {
	t.Parallel()
	// 320 reads of 200 ms: 64 s one by one, 2 s (the lease's TTL) at 32 in
	// flight.
	const n = 320
	a, cs, fenced, recovered := recoveryNode(t, n, 200*time.Millisecond)
	fenceNow(t, cs, fenced, n)
	renewalsBefore := a.Stats().Renewals
	cs.renewFails.Store(false)
	began := time.Now()
	select {
	case lost := <-recovered:
		if len(lost) != 0 {
			t.Fatalf("recovery lost %v", lost)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no recovery after 30 s (%d ownership claims)", cs.claims.Load())
	}
	took := time.Since(began)
	st := a.Stats()
	if st.Fences != 1 || st.Fenced || st.Owned != n || !a.LeaseValid() {
		t.Fatalf("after recovery: %+v, lease valid %v", st, a.LeaseValid())
	}
	// One claim a session, and one more for each that failed (timed out
	// on a loaded machine: the recovery's next round claims it again).
	if got, failed := cs.claims.Load(), cs.claimErrs.Load(); got-failed != n {
		t.Fatalf("%d ownership claims, %d of them failed; want %d that did not", got, failed, n)
	}
	// The recovery outlasted the lease TTL, so it must have renewed on the
	// way (the renewal that started it is one).
	if took > 2*time.Second && st.Renewals-renewalsBefore < 2 {
		t.Fatalf("recovery took %v with %d renewals", took, st.Renewals-renewalsBefore)
	}
	t.Logf("recovered %d sessions in %v; renewals %d", n, took.Round(time.Millisecond), st.Renewals-renewalsBefore)
}

// When renewals fail during a recovery until the lease may lapse, the
// recovery stops and the node stays fenced; once renewals succeed again it
// recovers and unfences, telling OnRecovered once.
func TestRecoveryStopsWhenRenewalsFail(t *testing.T) {
	t.Parallel()
	const n = 320
	a, cs, fenced, recovered := recoveryNode(t, n, 200*time.Millisecond)
	fenceNow(t, cs, fenced, n)
	cs.renewFails.Store(false)
	// Once the recovery reads, renewals fail again: within the TTL it gives
	// up, with reads left undone.
	deadline := time.Now().Add(10 * time.Second)
	for cs.claims.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cs.renewFails.Store(true)
	failures := a.Stats().RenewFailures
	for a.Stats().RenewFailures < failures+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the lease TTL
	select {
	case lost := <-recovered:
		t.Fatalf("recovered (lost %v) while renewals fail", lost)
	default:
	}
	if st := a.Stats(); !st.Fenced || st.RenewFailures < failures+2 || a.LeaseValid() {
		t.Fatalf("while renewals fail: %+v", st)
	}
	if got := cs.claims.Load(); got >= n {
		t.Fatalf("the stopped recovery read all %d rows", got)
	}
	cs.renewFails.Store(false)
	select {
	case lost := <-recovered:
		if len(lost) != 0 {
			t.Fatalf("recovery lost %v", lost)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no recovery once renewals succeed")
	}
	if st := a.Stats(); st.Fenced || st.Owned != n || !a.LeaseValid() {
		t.Fatalf("after recovery: %+v", st)
	}
}

// A burst of new sessions records their ownership MaxConcurrentCreates at a
// time, every one of them is recorded, and a caller whose context ends while
// it waits for a slot gives up.
func TestCreatesAreBounded(t *testing.T) {
	t.Parallel()
	for _, bad := range []int{-1, 4097} {
		if _, err := residency.New(residency.Config{NodeID: "a", MaxConcurrentCreates: bad}, nil); err == nil || !strings.Contains(err.Error(), "MaxConcurrentCreates") {
			t.Errorf("MaxConcurrentCreates %d: %v", bad, err)
		}
	}
	c := newCluster(t)
	cs := &counting{Store: c.store(false), createDelay: 20 * time.Millisecond}
	a := c.node("a", cs, func(cfg *residency.Config) { cfg.MaxConcurrentCreates = 4 })
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.EnsureOwned(ctx, fmt.Sprint("new-", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if most := cs.mostCreating.Load(); most != 4 {
		t.Fatalf("at most %d creations in flight, want 4", most)
	}
	if st := a.Stats(); st.Created != 40 || st.Owned != 40 {
		t.Fatalf("%+v", st)
	}

	slow := &counting{Store: c.store(false), createDelay: time.Second}
	one := c.node("one", slow, func(cfg *residency.Config) { cfg.MaxConcurrentCreates = 1 })
	busy := make(chan error, 1)
	go func() { _, err := one.EnsureOwned(ctx, "first"); busy <- err }()
	for slow.creating.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := one.EnsureOwned(cctx, "waits"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for a slot past the deadline: %v", err)
	}
	if err := <-busy; err != nil {
		t.Fatal(err)
	}
	if most := slow.mostCreating.Load(); most != 1 {
		t.Fatalf("%d creations in flight with one slot", most)
	}
}

// While every creation slot is taken and the queue would keep a new session
// waiting past the creation budget, a session this node does not own is
// refused (AdmitNew false, counted) and one it owns is admitted; once the
// creations finish, new sessions are admitted again. With a budget the
// queue fits in, nothing is refused.
func TestNewSessionsWaitWhileCreationsAreBackedUp(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	for _, tc := range []struct {
		name    string
		budget  time.Duration
		refused bool
	}{{"tight budget", 100 * time.Millisecond, true}, {"ample budget", time.Minute, false}} {
		slow := &counting{Store: c.store(false), createDelay: 300 * time.Millisecond}
		m := c.node("a-"+strings.Fields(tc.name)[0], slow, func(cfg *residency.Config) {
			cfg.MaxConcurrentCreates, cfg.CreationBudget = 2, tc.budget
		})
		ctx := context.Background()
		running, fresh := "running-"+m.NodeID(), "fresh-"+m.NodeID()
		if _, err := m.EnsureOwned(ctx, running); err != nil { // also measures a creation: ~300ms
			t.Fatal(err)
		}
		// With no creation in flight, a new session is admitted under the
		// ample budget; under the tight one it is refused until a probe
		// (serial reads, fast here) shows the store fast again.
		if m.AdmitNew(fresh) != !tc.refused {
			t.Fatalf("%s: a new session with no creation in flight admitted=%v, want %v", tc.name, !tc.refused, tc.refused)
		}
		if !eventually(m, fresh) {
			t.Fatalf("%s: a new session refused with no creation in flight once the probe measured the store", tc.name)
		}
		before := m.Stats().CreationRefusals
		wg := takeCreationSlots(t, m, slow, "burst-"+tc.name, 2)
		if got := !m.AdmitNew(fresh); got != tc.refused {
			t.Fatalf("%s: new session refused=%v while both creation slots are taken, want %v", tc.name, got, tc.refused)
		}
		if !m.AdmitNew(running) {
			t.Fatalf("%s: a session this node owns refused while creations are backed up", tc.name)
		}
		want := before
		if tc.refused {
			want++
		}
		if n := m.Stats().CreationRefusals; n != want {
			t.Fatalf("%s: CreationRefusals %d, want %d", tc.name, n, want)
		}
		wg.Wait()
		if !eventually(m, fresh) {
			t.Fatalf("%s: a new session still refused after the creations finished", tc.name)
		}
	}
}

// eventually asks AdmitNew for session until it is admitted (each refusal
// with nothing queued lets a probe measure the store), for up to 2 s.
func eventually(m *residency.Manager, session string) bool {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m.AdmitNew(session) {
			return true
		}
	}
	return false
}

// takeCreationSlots creates n new sessions named prefix<i> on m in the
// background and returns once all n are in slow's CreateOwner; the group is
// done when they are.
func takeCreationSlots(t *testing.T, m *residency.Manager, slow *counting, prefix string, n int) *sync.WaitGroup {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.EnsureOwned(context.Background(), fmt.Sprint(prefix, i)); err != nil {
				t.Error(err)
			}
		}()
	}
	for slow.creating.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	return &wg
}

// A session of a family with a tight window is judged by its own budget
// (AdmissionOf): with both creation slots taken, a new session of it is
// refused while one of no family, under the ample default budget, is
// admitted. (With the default budget alone, a 60 ms family's new sessions
// were admitted behind a queue the default's 450 ms allowed, and their first
// writes came far past their window.)
func TestNewSessionsAreJudgedByTheirFamilysBudget(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	slow := &counting{Store: c.store(false), createDelay: 300 * time.Millisecond}
	m := c.node("budget-of", slow, func(cfg *residency.Config) {
		cfg.MaxConcurrentCreates, cfg.CreationBudget = 2, time.Minute
		cfg.AdmissionOf = func(session string) (time.Duration, time.Duration) {
			if strings.HasPrefix(session, "call:") {
				return 100 * time.Millisecond, 0
			}
			return 0, 0
		}
	})
	if _, err := m.EnsureOwned(context.Background(), "running"); err != nil { // measures a creation: ~300ms
		t.Fatal(err)
	}
	wg := takeCreationSlots(t, m, slow, "burst-", 2)
	if m.AdmitNew("call:fresh") {
		t.Fatal("a new session of the 100 ms family admitted behind two 300 ms creations")
	}
	if !m.AdmitNew("fresh") {
		t.Fatal("a new session of no family refused under the one-minute default budget")
	}
	if n := m.Stats().CreationRefusals; n != 1 {
		t.Fatalf("CreationRefusals %d, want 1", n)
	}
	wg.Wait()
}

// A burst of new sessions is metered from its first commits: before any
// creation has started (their flush delay has not passed) or ended, AdmitNew
// counts the sessions it admitted within the last AdmitLead as queued and
// judges the queue by the latency of taking the lease at Start. Once the burst
// is older than AdmitLead and no creation is running, new sessions are
// admitted again. (Counting only creations in flight admitted the whole burst,
// whose creations then queued far past the budget: the node refused every
// commit, of running sessions too, for over a second.)
func TestBurstOfNewSessionsIsMeteredFromTheStart(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	slow := &counting{Store: c.store(false), takeDelay: 300 * time.Millisecond}
	const lead = 300 * time.Millisecond
	m := c.node("burst-meter", slow, func(cfg *residency.Config) {
		cfg.MaxConcurrentCreates, cfg.CreationBudget, cfg.AdmitLead = 2, 750*time.Millisecond, lead
	})
	admitted := 0
	for i := range 20 {
		if m.AdmitNew(fmt.Sprint("burst-", i)) {
			admitted++
		}
	}
	// A round takes at least 300 ms: the budget holds two rounds (three
	// never), so at most the two sessions that fill the first round and two
	// more are admitted; the first round fits whatever taking the lease
	// added to its 300 ms, up to 450 ms. (With a 40 ms delay and a 100 ms
	// budget, then a 120 ms delay and a 300 ms budget, a loaded machine made
	// taking the lease outlast the budget, and only the first session, then
	// none, was admitted.)
	if admitted < 2 || admitted > 4 {
		t.Fatalf("%d of a burst of 20 new sessions admitted with 2 creation slots, a 750 ms budget and a >=300 ms creation; want 2 to 4", admitted)
	}
	if n := m.Stats().CreationRefusals; n != uint64(20-admitted) {
		t.Fatalf("CreationRefusals %d, want %d", n, 20-admitted)
	}
	time.Sleep(2 * lead)
	if !m.AdmitNew("after-the-burst") {
		t.Fatal("a new session refused after the burst aged past AdmitLead with no creation running")
	}
}

// A new session of a family with a long flush delay counts as queued for
// that whole delay, its creation starting only then: 200 ms after a 1s-lead
// session was admitted, it is still ahead of the next one. (With one lead,
// the default 100 ms, for every family, it had stopped counting long before
// its creation started, and a burst of such sessions was admitted past the
// budget.)
func TestAdmissionsCountForTheirOwnLead(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	slow := &counting{Store: c.store(false), takeDelay: 300 * time.Millisecond}
	m := c.node("lead-of", slow, func(cfg *residency.Config) {
		cfg.MaxConcurrentCreates, cfg.CreationBudget, cfg.AdmitLead = 1, 500*time.Millisecond, 100*time.Millisecond
		cfg.AdmissionOf = func(session string) (time.Duration, time.Duration) {
			if strings.HasPrefix(session, "reg:") {
				return 0, time.Second
			}
			return 0, 0
		}
	})
	// A creation takes at least 300 ms (taking the lease did): with one slot
	// and a 500 ms budget, no session may queue ahead of a new one, and a
	// session with nothing ahead fits with 200 ms to spare. (With 100 ms and
	// a 150 ms budget, a clean-clone make test on a loaded machine took the
	// lease in over 150 ms and refused the first session.)
	if !m.AdmitNew("reg:1") {
		t.Fatal("a new session refused with nothing queued ahead of it")
	}
	time.Sleep(200 * time.Millisecond)
	if m.AdmitNew("reg:2") {
		t.Fatal("a new session admitted while one admitted 200 ms ago, with a 1s lead, has not started its creation")
	}
	time.Sleep(2 * time.Second) // past two spans of the lead, with no creation running
	if !m.AdmitNew("reg:3") {
		t.Fatal("a new session refused once the admitted one's lead had passed")
	}
}

// While a single creation takes longer than the budget, no new session is
// admitted, however many slots are free. (With free slots they were all
// admitted: on a cold three-node ring at RF 3, creations took seconds and
// the soak lost twelve acknowledged new sessions to a pause 1.8 s after their
// acknowledgement. Then one at a time was admitted, to keep the estimate
// measured, and a burst run by hand lost such a lone session.) A probe of
// serial reads measures the store instead; here it is fast (only taking the
// lease was slow), so new sessions are admitted again soon, one round of the
// budget at a time.
func TestSlowCreationsAdmitNoNewSessionUntilAProbeFindsTheStoreFast(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	slow := &counting{Store: c.store(false), takeDelay: 200 * time.Millisecond}
	m := c.node("slow-creations", slow, func(cfg *residency.Config) {
		cfg.MaxConcurrentCreates, cfg.CreationBudget, cfg.AdmitLead = 64, 100*time.Millisecond, 300*time.Millisecond
	})
	if m.AdmitNew("first") {
		t.Fatal("a new session admitted while one creation (taking the lease took >= 200 ms) outlasts the 100 ms budget")
	}
	if !eventually(m, "first") {
		t.Fatalf("a new session still refused after %d probe reads of a fast store", m.Stats().CreationProbes)
	}
	if m.Stats().CreationProbes == 0 {
		t.Fatal("admitted again without a probe")
	}
}
