package residency_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// hooked wraps a store with hooks the tests below use to put calls in the
// order a race would.
type hooked struct {
	*counting
	mu          sync.Mutex
	failOwner   map[string]bool                        // ownership reads and claims of these sessions fail
	loseReply   map[string]bool                        // the next claim of these sessions applies, but its reply is lost
	beforeClaim func(session string, prev store.Owner) // runs before each claim
	afterClaim  func(session string, won bool, cur store.Owner)
	beforeFence func(session string, epoch uint64)
	beforeRefr  func(session string)
}

var errInjected = errors.New("injected: read timed out")

func (h *hooked) failing(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failOwner[s]
}

func (h *hooked) setFailing(s string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failOwner == nil {
		h.failOwner = map[string]bool{}
	}
	h.failOwner[s] = on
}

func (h *hooked) ReadOwner(ctx context.Context, s string) (store.Owner, bool, error) {
	if h.failing(s) {
		return store.Owner{}, false, errInjected
	}
	return h.counting.ReadOwner(ctx, s)
}

func (h *hooked) Claim(ctx context.Context, s string, prev store.Owner, node string, ttl time.Duration) (bool, store.Owner, error) {
	if h.failing(s) {
		return false, store.Owner{}, errInjected
	}
	if h.beforeClaim != nil {
		h.beforeClaim(s, prev)
	}
	won, cur, err := h.counting.Claim(ctx, s, prev, node, ttl)
	h.mu.Lock()
	lose := h.loseReply[s]
	delete(h.loseReply, s)
	h.mu.Unlock()
	if lose {
		return false, store.Owner{}, errInjected
	}
	if h.afterClaim != nil && err == nil {
		h.afterClaim(s, won, cur)
	}
	return won, cur, err
}

func (h *hooked) Fence(ctx context.Context, s string, epoch uint64, items []store.Item) error {
	if h.beforeFence != nil {
		h.beforeFence(s, epoch)
	}
	return h.counting.Fence(ctx, s, epoch, items)
}

func (h *hooked) RefreshOwner(ctx context.Context, s, node string, epoch uint64, ttl time.Duration) (bool, error) {
	if h.beforeRefr != nil {
		h.beforeRefr(s)
	}
	return h.counting.RefreshOwner(ctx, s, node, epoch, ttl)
}

// discards records what a Manager discards from its buffer; pending is what
// the buffer holds unwritten.
type discards struct {
	mu       sync.Mutex
	sessions []string
	pending  []string
}

func (d *discards) PendingSessions() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(d.pending), func(s string) bool { return slices.Contains(d.sessions, s) })
}

func (d *discards) Pause()  {}
func (d *discards) Resume() {}
func (d *discards) Discard(s ...string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sessions = append(d.sessions, s...)
	return len(s)
}
func (d *discards) has(s string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Contains(d.sessions, s)
}

func waitFor[T any](t *testing.T, ch chan T, what string, d time.Duration) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("no %s within %v", what, d)
	}
	var zero T
	return zero
}

// A recovering node whose check of a session fails (a timeout) must not count
// the session as adopted elsewhere: only a session a peer really owns may be
// dropped, with its unwritten changes. The rest are checked again until known.
func TestRecoveryKeepsSessionsItCouldNotCheck(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	h := &hooked{counting: &counting{Store: c.store(false)}}
	buf := &discards{}
	a, fenced, recovered := fenceable(c, h, buf)
	ctx := context.Background()
	for _, s := range []string{"ok", "flaky"} {
		if _, err := a.EnsureOwned(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	h.renewFails.Store(true)
	waitFor(t, fenced, "fence", 10*time.Second)
	h.setFailing("flaky", true)
	h.renewFails.Store(false)
	// Recovery cannot settle "flaky" for a while: it must neither drop it nor
	// report it lost.
	time.Sleep(3 * time.Second)
	select {
	case lost := <-recovered:
		if slices.Contains(lost, "flaky") {
			t.Fatalf("recovery reported %v lost though nobody else owns it", lost)
		}
	default:
	}
	h.setFailing("flaky", false)
	deadline := time.Now().Add(15 * time.Second)
	for (a.Stats().Fenced || !a.LeaseValid()) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if buf.has("flaky") {
		t.Fatal("the unwritten changes of a session nobody else owns were discarded")
	}
	if _, ok := a.Epoch("flaky"); !ok {
		t.Fatal("a session nobody else owns was forgotten by recovery")
	}
	if _, ok := a.Epoch("ok"); !ok || a.Stats().Fenced {
		t.Fatalf("after recovery: %+v", a.Stats())
	}
}

// A recovery claim that applied but whose reply was lost leaves the row one
// epoch above what the node holds; the next recovery must recognise its own
// claim, not count the session as adopted elsewhere.
func TestRecoveryRecognisesItsOwnLostClaim(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	h := &hooked{counting: &counting{Store: c.store(false)}, loseReply: map[string]bool{"s": true}}
	buf := &discards{}
	a, fenced, recovered := fenceable(c, h, buf)
	if _, err := a.EnsureOwned(context.Background(), "s"); err != nil {
		t.Fatal(err)
	}
	h.renewFails.Store(true)
	waitFor(t, fenced, "fence", 10*time.Second)
	h.renewFails.Store(false)
	if lost := waitFor(t, recovered, "recovery", 15*time.Second); len(lost) != 0 {
		t.Fatalf("recovery lost %v", lost)
	}
	if e, ok := a.Epoch("s"); !ok || e != 2 || buf.has("s") {
		t.Fatalf("after recovery: epoch %d owned %v discarded %v", e, ok, buf.has("s"))
	}
}

// A peer that saw this node's lease expire may claim one of its sessions
// after this node, recovering, checked the session: the two must never both
// own it. Recovery settles ownership with a compare-and-set, so the late
// claim fails (or, if it came first, recovery gives the session up).
func TestRecoveryAndALateClaimNeverBothOwn(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ha := &hooked{counting: &counting{Store: c.store(false)}}
	fenced, recovered := make(chan []string, 4), make(chan []string, 4)
	a := c.node("a", ha, func(cfg *residency.Config) {
		cfg.LeaseTTL, cfg.LeaseRenew = 2*time.Second, 400*time.Millisecond
		cfg.OnFenced = func(s []string) { fenced <- s }
		cfg.OnRecovered = func(lost []string) { recovered <- lost }
	})
	ctx := context.Background()
	if _, err := a.EnsureOwned(ctx, "contested"); err != nil {
		t.Fatal(err)
	}
	hb := &hooked{counting: &counting{Store: c.store(false)}}
	atClaim, goOn := make(chan struct{}), make(chan struct{})
	hb.beforeClaim = func(string, store.Owner) { close(atClaim); <-goOn }
	b := c.node("b", hb, func(cfg *residency.Config) { cfg.LeaseTTL = 2 * time.Second })

	ha.renewFails.Store(true)
	waitFor(t, fenced, "fence", 10*time.Second)
	// b sees a's lease expire and starts adopting; it stops just before its
	// claim.
	adopted := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(20 * time.Second)
		for {
			_, err := b.Adopt(ctx, "contested", residency.AdoptOptions{})
			var oe *residency.OwnedElsewhereError
			if errors.As(err, &oe) && oe.Live && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			adopted <- err
			return
		}
	}()
	waitFor(t, atClaim, "claim by b", 20*time.Second)
	ha.renewFails.Store(false)
	lost := waitFor(t, recovered, "recovery of a", 20*time.Second)
	close(goOn)
	err := waitFor(t, adopted, "b's adoption", 20*time.Second)
	_, aOwns := a.Epoch("contested")
	_, bOwns := b.Epoch("contested")
	if aOwns && bOwns {
		t.Fatalf("both own the session: a recovered losing %v, b's adoption returned %v", lost, err)
	}
	if !aOwns && !bOwns {
		t.Fatalf("nobody owns the session: a lost %v, b: %v", lost, err)
	}
	o, found, rerr := ha.Store.ReadOwner(ctx, "contested")
	if rerr != nil || !found {
		t.Fatalf("ownership row: %+v %v %v", o, found, rerr)
	}
	owner := "a"
	if bOwns {
		owner = "b"
	}
	if o.Node != owner {
		t.Fatalf("the row names %s, %s believes it owns the session", o.Node, owner)
	}
}

// A node's lease must look expired to its peers only after the node itself
// stopped acting as an owner: a peer may adopt as soon as it sees the lease
// gone, so the node must have stopped before that moment, whatever the
// rounding of Cassandra's whole-second TTLs.
func TestPeersSeeLeaseExpireOnlyAfterTheNodeStops(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	for round := 0; round < 3; round++ {
		ha := &counting{Store: c.store(false)}
		node := "lease-" + string(rune('a'+round))
		a := c.node(node, ha, func(cfg *residency.Config) { cfg.LeaseTTL = time.Second })
		b := c.node(node+"-peer", c.store(false), func(cfg *residency.Config) { cfg.LeaseCacheTTL = time.Millisecond })
		ctx := context.Background()
		if live, err := b.Live(ctx, node); err != nil || !live {
			t.Fatalf("peer sees a fresh lease: %v %v", live, err)
		}
		ha.renewFails.Store(true)
		var stopped, seenDead time.Time
		deadline := time.Now().Add(10 * time.Second)
		for (stopped.IsZero() || seenDead.IsZero()) && time.Now().Before(deadline) {
			if stopped.IsZero() && !a.LeaseValid() {
				stopped = time.Now()
			}
			if seenDead.IsZero() {
				live, err := b.Live(ctx, node)
				if err != nil {
					t.Fatal(err)
				}
				if !live {
					seenDead = time.Now()
					// The node must have stopped by the time the peer's
					// read answered. (Comparing the two sampled times
					// instead failed in CI without a fault: a peer's read
					// that took over 100 ms on a loaded machine put the
					// node's next sample after it.)
					if a.LeaseValid() {
						t.Fatalf("round %d: the peer saw the lease expire while the node still acted as owner", round)
					}
					if stopped.IsZero() {
						t.Logf("round %d: the node stopped while the peer's read was on its way", round)
						stopped = seenDead
					}
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
		if stopped.IsZero() || seenDead.IsZero() {
			t.Fatalf("round %d: stopped %v, seen dead %v", round, stopped, seenDead)
		}
		t.Logf("round %d: peer saw the lease expire %v after the node stopped", round, seenDead.Sub(stopped).Round(time.Millisecond))
	}
}

// A forced and a normal Adopt of one session on one node must not leave the
// node believing an epoch below the one it claimed last: its writes would sit
// under its own fence.
func TestConcurrentForcedAndNormalAdoptKeepHighestEpoch(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	st := c.store(false)
	orphan(t, st, "twice", "dead", store.Item{Key: "k", Value: []byte("v")})
	h := &hooked{counting: &counting{Store: c.store(false)}}
	claimed, forcedDone := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.afterClaim = func(_ string, won bool, cur store.Owner) {
		if won && cur.Epoch == 2 {
			once.Do(func() { close(claimed) })
		}
	}
	h.beforeFence = func(_ string, epoch uint64) {
		if epoch == 2 { // the normal adoption's fence waits for the forced one
			select {
			case <-forcedDone:
			case <-time.After(5 * time.Second):
			}
		}
	}
	b := c.node("b", h)
	ctx := context.Background()
	normal := make(chan error, 1)
	go func() {
		_, err := b.Adopt(ctx, "twice", residency.AdoptOptions{})
		normal <- err
	}()
	waitFor(t, claimed, "normal claim", 10*time.Second)
	_, ferr := b.Adopt(ctx, "twice", residency.AdoptOptions{Force: true})
	close(forcedDone)
	nerr := waitFor(t, normal, "normal adoption", 10*time.Second)
	o, _, err := st.ReadOwner(ctx, "twice")
	if err != nil {
		t.Fatal(err)
	}
	e, ok := b.Epoch("twice")
	if !ok || e != o.Epoch {
		t.Fatalf("node holds epoch %d (%v), the row says %d (normal: %v, forced: %v)", e, ok, o.Epoch, nerr, ferr)
	}
}

// A refresh of the ownership row running while the node releases its
// sessions (graceful shutdown) must not undo the release.
func TestRefreshDoesNotUndoRelease(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	h := &hooked{counting: &counting{Store: c.store(false)}}
	atRefresh, goOn := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.beforeRefr = func(string) {
		once.Do(func() { close(atRefresh); <-goOn })
	}
	a := c.node("a", h, func(cfg *residency.Config) {
		cfg.OwnershipTTL, cfg.RefreshEvery = 4*time.Second, 100*time.Millisecond
	})
	ctx := context.Background()
	if _, err := a.EnsureOwned(ctx, "leaving"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, atRefresh, "refresh", 10*time.Second)
	if n, err := a.ReleaseAll(ctx); err != nil || n != 1 {
		t.Fatalf("release: %d %v", n, err)
	}
	close(goOn)
	time.Sleep(300 * time.Millisecond)
	o, _, err := h.Store.ReadOwner(ctx, "leaving")
	if err != nil || !o.Released {
		t.Fatalf("after a refresh raced the release the row is %+v (%v)", o, err)
	}
}

// Close racing adoptions in flight must neither panic nor hang.
func TestCloseRacingAdoptions(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	st := c.store(false)
	for i := range 40 {
		orphan(t, st, "race-close-"+string(rune('A'+i)), "dead")
	}
	for round := 0; round < 4; round++ {
		m, err := residency.New(residency.Config{NodeID: "closer", LeaseTTL: 2 * time.Second}, st)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = m.Adopt(context.Background(), "race-close-"+string(rune('A'+i)), residency.AdoptOptions{Force: true})
			}()
		}
		time.Sleep(time.Duration(round) * 5 * time.Millisecond)
		if err := m.Close(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	}
}

// A node that fences also gives up the new sessions whose first write it had
// not made yet: nobody else can see them, so while it is fenced their events
// go elsewhere and start them afresh, and writing them after recovery could
// drop that fresh start's acknowledged writes (found by the soak, seed
// 3194714642361885: a node paused right after creating a session wrote it on
// waking over the one a peer had started meanwhile).
func TestFenceGivesUpUnrecordedSessions(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	h := &hooked{counting: &counting{Store: c.store(false)}}
	buf := &discards{pending: []string{"recorded", "unrecorded"}}
	a, fenced, recovered := fenceable(c, h, buf)
	if _, err := a.EnsureOwned(context.Background(), "recorded"); err != nil {
		t.Fatal(err)
	}
	h.renewFails.Store(true)
	f := waitFor(t, fenced, "fence", 10*time.Second)
	slices.Sort(f)
	if !slices.Equal(f, []string{"recorded", "unrecorded"}) {
		t.Fatalf("fenced with %v, want both the recorded and the unrecorded session", f)
	}
	if !buf.has("unrecorded") || buf.has("recorded") {
		t.Fatalf("discarded %v, want only the unrecorded session", buf.sessions)
	}
	h.renewFails.Store(false)
	if lost := waitFor(t, recovered, "recovery", 15*time.Second); !slices.Equal(lost, []string{"unrecorded"}) {
		t.Fatalf("recovered losing %v, want [unrecorded]", lost)
	}
	if _, ok := a.Epoch("recorded"); !ok {
		t.Fatal("the recorded session was lost")
	}
}

// fenceable starts node "a" on h with a 2 s lease renewed every 400 ms and
// buf as its buffer, and returns it with channels fed by OnFenced and
// OnRecovered.
func fenceable(c *cluster, h *hooked, buf *discards) (*residency.Manager, chan []string, chan []string) {
	fenced, recovered := make(chan []string, 4), make(chan []string, 4)
	a := c.node("a", h, func(cfg *residency.Config) {
		cfg.LeaseTTL, cfg.LeaseRenew = 2*time.Second, 400*time.Millisecond
		cfg.OnFenced = func(s []string) { fenced <- s }
		cfg.OnRecovered = func(lost []string) { recovered <- lost }
		cfg.Flusher = buf
	})
	return a, fenced, recovered
}

// Close racing adoptions of unknown sessions with the negative cache on:
// each miss writes the cache (and waits for it) while Close closes it. The
// adapter guarded this itself; a direct user of residency must be safe too.
func TestCloseRacingAdoptWithTheNegativeCache(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	st := c.store(false)
	for round := 0; round < 4; round++ {
		m, err := residency.New(residency.Config{NodeID: "neg-closer", LeaseTTL: 2 * time.Second,
			NegativeCacheSize: 1000, NegativeCacheTTL: time.Second}, st)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range 20 {
					_, err := m.Adopt(context.Background(), fmt.Sprintf("unknown-%d-%d", i, k), residency.AdoptOptions{})
					if err != nil && !errors.Is(err, residency.ErrNotFound) && !errors.Is(err, residency.ErrClosed) {
						t.Errorf("adoption racing Close: %v", err)
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(round) * 5 * time.Millisecond)
		if err := m.Close(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	}
}
