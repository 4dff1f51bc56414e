package residency_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// cluster is one test keyspace with a store per simulated node.
type cluster struct {
	t  *testing.T
	ks string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, ks: cassandratest.Keyspace(t)}
	c.store(true) // create the schema once
	return c
}

// store opens a separate driver session, as a separate node would have.
func (c *cluster) store(schema bool) *store.Store {
	c.t.Helper()
	hosts, port := cassandratest.Hosts(c.t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, store.Options{Hosts: hosts, Port: port, Keyspace: c.ks, CreateSchema: schema})
	if err != nil {
		c.t.Fatalf("open store: %v", err)
	}
	c.t.Cleanup(st.Close)
	return st
}

// node starts a Manager named id on its own store.
func (c *cluster) node(id string, st residency.Store, tweak ...func(*residency.Config)) *residency.Manager {
	c.t.Helper()
	cfg := residency.Config{NodeID: id, LeaseTTL: 5 * time.Second}
	for _, f := range tweak {
		f(&cfg)
	}
	m, err := residency.New(cfg, st)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = m.Close(context.Background(), false) })
	return m
}

// orphan persists a session owned by a node that has no lease (a dead node).
func orphan(t *testing.T, st *store.Store, session, owner string, items ...store.Item) {
	t.Helper()
	ctx := context.Background()
	if ok, _, err := st.CreateOwner(ctx, session, owner, 0, time.Hour); err != nil || !ok {
		t.Fatalf("create owner %s: %v %v", session, ok, err)
	}
	if err := st.IndexOwner(ctx, owner, session, 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if len(items) > 0 {
		if err := st.WriteSession(ctx, &store.Write{Session: session, Epoch: 1, Seq: 1000, Items: items}); err != nil {
			t.Fatal(err)
		}
	}
}

// renewAs renews node's lease for ttl, as node's last renewal would, now.
func renewAs(t *testing.T, st *store.Store, node string, ttl time.Duration) {
	t.Helper()
	if err := st.RenewLease(context.Background(), node, ttl, 100*time.Millisecond, time.Now(), "inc-"+node); err != nil {
		t.Fatal(err)
	}
}

func state(t *testing.T, st *store.Store, session string) map[string]string {
	t.Helper()
	items, err := st.ReadState(context.Background(), session)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, it := range items {
		m[it.Key] = string(it.Value)
	}
	return m
}

// counting wraps a store and counts (and can slow or break) some calls.
type counting struct {
	*store.Store
	ownerReads atomic.Int64
	stateReads atomic.Int64
	claims     atomic.Int64
	claimErrs  atomic.Int64 // claims that returned an error (a timeout under load: retried)
	fences     atomic.Int64
	readDelay  time.Duration
	renewFails atomic.Bool
	renewDelay atomic.Int64 // nanoseconds each renewal waits before it is sent

	createDelay            time.Duration
	takeDelay              time.Duration // how long taking the lease at Start takes
	creating, mostCreating atomic.Int64  // ownership creations in flight, now and at most
}

func (c *counting) CreateOwner(ctx context.Context, session, node string, ended uint64, ttl time.Duration) (bool, store.Owner, error) {
	n := c.creating.Add(1)
	defer c.creating.Add(-1)
	for m := c.mostCreating.Load(); n > m && !c.mostCreating.CompareAndSwap(m, n); m = c.mostCreating.Load() {
	}
	time.Sleep(c.createDelay)
	return c.Store.CreateOwner(ctx, session, node, ended, ttl)
}

func (c *counting) TakeLease(ctx context.Context, node, incarnation string, prev store.Lease, found bool, ttl, grace time.Duration, since time.Time) (bool, store.Lease, error) {
	time.Sleep(c.takeDelay)
	return c.Store.TakeLease(ctx, node, incarnation, prev, found, ttl, grace, since)
}

func (c *counting) ReadOwner(ctx context.Context, s string) (store.Owner, bool, error) {
	c.ownerReads.Add(1)
	time.Sleep(c.readDelay)
	return c.Store.ReadOwner(ctx, s)
}

func (c *counting) ReadState(ctx context.Context, session string) ([]store.Item, error) {
	c.stateReads.Add(1)
	return c.Store.ReadState(ctx, session)
}

func (c *counting) Fence(ctx context.Context, session string, epoch uint64, items []store.Item) error {
	c.fences.Add(1)
	return c.Store.Fence(ctx, session, epoch, items)
}

func (c *counting) RenewLease(ctx context.Context, node string, ttl, grace time.Duration, since time.Time, incarnation string) error {
	if c.renewFails.Load() {
		return errors.New("injected: cassandra unreachable")
	}
	if d := time.Duration(c.renewDelay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return c.Store.RenewLease(ctx, node, ttl, grace, since, incarnation)
}

// Claim is how a recovering node settles its sessions: it counts as an
// ownership read and takes readDelay too.
func (c *counting) Claim(ctx context.Context, s string, prev store.Owner, node string, ttl time.Duration) (bool, store.Owner, error) {
	c.claims.Add(1)
	time.Sleep(c.readDelay)
	ok, cur, err := c.Store.Claim(ctx, s, prev, node, ttl)
	if err != nil {
		c.claimErrs.Add(1)
	}
	return ok, cur, err
}

func TestAdoptRestoresAndFences(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	st := c.store(false)
	orphan(t, st, "call-1", "dead", store.Item{Key: "a", Value: []byte("1")}, store.Item{Key: "b", Value: []byte("2")})
	b := c.node("b", st)
	a, err := b.Adopt(context.Background(), "call-1", residency.AdoptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Epoch != 2 || a.PreviousOwner != "dead" || len(a.Items) != 2 || string(a.Items[0].Value) != "1" {
		t.Fatalf("adopted %+v", a)
	}
	if e, ok := b.Epoch("call-1"); !ok || e != 2 {
		t.Fatalf("epoch after adopt: %d %v", e, ok)
	}
	if _, err := b.Adopt(context.Background(), "call-1", residency.AdoptOptions{}); !errors.Is(err, residency.ErrAlreadyOwned) {
		t.Fatalf("second adopt: %v", err)
	}
	// The dead owner wakes up and flushes with its clock far ahead: invisible.
	late := &store.Write{Session: "call-1", Epoch: 1, Seq: 1<<store.SeqBits - 2, Items: []store.Item{{Key: "a", Value: []byte("zombie")}, {Key: "z", Value: []byte("zombie")}}}
	if err := st.WriteSession(context.Background(), late); err != nil {
		t.Fatal(err)
	}
	if got := state(t, st, "call-1"); len(got) != 2 || got["a"] != "1" || got["b"] != "2" {
		t.Fatalf("after the zombie's write a reader sees %v, want a=1 b=2", got)
	}
	// Peek sees the new owner.
	p, err := b.Peek(context.Background(), "call-1")
	if err != nil || p.Owner != "b" || p.Epoch != 2 || len(p.Items) != 2 {
		t.Fatalf("peek: %+v %v", p, err)
	}
}

func TestAdoptRefusesLiveOwnerUnlessForced(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.node("a", c.store(false))
	b := c.node("b", c.store(false))
	ctx := context.Background()
	if e, err := a.EnsureOwned(ctx, "s1"); err != nil || e != 1 {
		t.Fatalf("ensure owned: %d %v", e, err)
	}
	_, err := b.Adopt(ctx, "s1", residency.AdoptOptions{})
	var oe *residency.OwnedElsewhereError
	if !errors.As(err, &oe) || oe.Owner != "a" || !oe.Live || !errors.Is(err, residency.ErrOwnedElsewhere) {
		t.Fatalf("adopt of a live node's session: %v", err)
	}
	// A second node creating the same ID is told who owns it.
	if _, err := b.EnsureOwned(ctx, "s1"); !errors.As(err, &oe) || oe.Owner != "a" {
		t.Fatalf("ensure owned of a taken ID: %v", err)
	}
	got, err := b.Adopt(ctx, "s1", residency.AdoptOptions{Force: true})
	if err != nil || got.PreviousOwner != "a" || got.Epoch != 2 {
		t.Fatalf("forced adopt: %+v %v", got, err)
	}
}

// An adoption refused because the owner is live reads no state: a host
// retries such refusals for every session of a dead node until its lease runs
// out, and each retry used to read the session's whole state (a 10-minute
// failover run's sessions, 1,300 items each, turned those retries into tens
// of megabytes of reads in the seconds the survivor needed Cassandra for its
// adoptions). Once the owner is gone, the adoption reads it and restores it.
func TestRefusedAdoptionReadsNoState(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	st := c.store(false)
	orphan(t, st, "live-1", "a", store.Item{Key: "k", Value: []byte("v")})
	// a's lease is live: a holds it.
	renewAs(t, st, "a", time.Hour)
	cs := &counting{Store: st}
	b := c.node("b", cs)
	for range 5 {
		_, err := b.Adopt(ctx, "live-1", residency.AdoptOptions{})
		var oe *residency.OwnedElsewhereError
		if !errors.As(err, &oe) || oe.Owner != "a" || !oe.Live {
			t.Fatalf("adopt of a live node's session: %v, want an OwnedElsewhereError naming a", err)
		}
	}
	if n := cs.stateReads.Load(); n != 0 {
		t.Fatalf("5 refused adoptions read the state %d times, want 0", n)
	}
	if err := st.DropLease(ctx, "a", "inc-a"); err != nil {
		t.Fatal(err)
	}
	// b trusts the live lease it read for LeaseCacheTTL: retry until then.
	var (
		got *residency.Adopted
		err error
	)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got, err = b.Adopt(ctx, "live-1", residency.AdoptOptions{})
		var oe *residency.OwnedElsewhereError
		if !errors.As(err, &oe) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || got.PreviousOwner != "a" || len(got.Items) != 1 || string(got.Items[0].Value) != "v" {
		t.Fatalf("adopt once a is gone: %+v %v", got, err)
	}
	if n := cs.stateReads.Load(); n != 1 {
		t.Fatalf("the adoption read the state %d times, want 1", n)
	}
}

// AdoptOptions.Wait: an adoption refused because the owner's lease is live
// waits for that lease to end and adopts the session then, without the host
// polling; an owner whose lease ends past the wait is refused at once.
func TestAdoptWaitsForTheLeaseToEnd(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	st := c.store(false)
	orphan(t, st, "w-1", "a", store.Item{Key: "k", Value: []byte("v")})
	orphan(t, st, "w-2", "alive", store.Item{Key: "k", Value: []byte("v")})
	// a renews once more and dies: its lease ends 1.5 s + the skew after it.
	const ttl = 1500 * time.Millisecond
	renewed := time.Now()
	renewAs(t, st, "a", ttl)
	renewAs(t, st, "alive", time.Hour)
	cs := &counting{Store: st}
	b := c.node("b", cs)

	got, err := b.Adopt(ctx, "w-1", residency.AdoptOptions{Wait: 10 * time.Second})
	took := time.Since(renewed)
	if err != nil || got.PreviousOwner != "a" || len(got.Items) != 1 {
		t.Fatalf("adopt with a wait: %+v %v, want adopted from a", got, err)
	}
	if got.Waited <= 0 || got.Waited > took {
		t.Fatalf("the adoption says it waited %v, want above 0 and at most the %v it took", got.Waited, took)
	}
	// Not before the lease ended (1.6 s after the renewal was sent), and
	// soon after it: well before a host's next poll of a second would.
	if took < ttl+100*time.Millisecond || took > ttl+100*time.Millisecond+time.Second {
		t.Fatalf("adopted %v after a's last renewal, want soon after its lease ended (%v)", took, ttl+100*time.Millisecond)
	}
	// It looked again when its cached copy of the lease ran out, not in a
	// busy loop: a handful of lease reads, not hundreds; and it claimed at
	// the ownership row it read before waiting.
	if s := b.Stats(); s.LeaseWaits == 0 || s.LeaseReads == 0 || s.LeaseReads > 12 {
		t.Fatalf("stats: %d lease waits, %d lease reads; want some waits and 1..12 reads", s.LeaseWaits, s.LeaseReads)
	}
	if n := cs.ownerReads.Load(); n != 1 {
		t.Fatalf("the waiting adoption read the ownership row %d times, want once, before waiting", n)
	}

	// A live owner whose lease runs past the wait is refused at once.
	began := time.Now()
	_, err = b.Adopt(ctx, "w-2", residency.AdoptOptions{Wait: 3 * time.Second})
	var oe *residency.OwnedElsewhereError
	if !errors.As(err, &oe) || oe.Owner != "alive" || !oe.Live {
		t.Fatalf("adopt of a session whose owner's lease runs an hour: %v, want an OwnedElsewhereError naming alive", err)
	}
	if d := time.Since(began); d > time.Second {
		t.Fatalf("refused after %v, want at once (the lease ends past the wait)", d)
	}
	// A wait the caller's context cuts short ends with the refusal (or the
	// context's error, when it ends during a read), adopting nothing.
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	renewAs(t, st, "alive", 2*time.Second)
	time.Sleep(time.Second) // b's cached copy of the hour-long lease runs out
	began = time.Now()
	_, err = b.Adopt(cctx, "w-2", residency.AdoptOptions{Wait: 10 * time.Second})
	if !(errors.As(err, &oe) && oe.Owner == "alive") && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("adopt cut short by its context: %v, want an OwnedElsewhereError naming alive", err)
	}
	if d := time.Since(began); d > time.Second {
		t.Fatalf("an adoption whose context ended after 200ms returned after %v", d)
	}
	if _, ok := b.Epoch("w-2"); ok {
		t.Fatal("the cut-short adoption owns w-2")
	}
}

// A dead node's sessions, adopted all at once (waiting together for its
// lease to end), share reads of its lease instead of each reading it: the
// reads are a handful for the whole node, not one per session and look.
func TestWaitingAdoptionsShareTheLeaseRead(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	st := c.store(false)
	const n = 24
	for i := range n {
		orphan(t, st, fmt.Sprint("sh-", i), "a", store.Item{Key: "k", Value: []byte("v")})
	}
	renewAs(t, st, "a", 1500*time.Millisecond)
	b := c.node("b", st)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Adopt(ctx, fmt.Sprint("sh-", i), residency.AdoptOptions{Wait: 10 * time.Second}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a waiting adoption failed: %v", err)
	}
	// The waits look again every LeaseCacheTTL (about 0.8 s here) over the
	// lease's 1.6 s: a few rounds of one read each, where one read per
	// session and round would be over n.
	if r := b.Stats().LeaseReads; r == 0 || r >= n/2 {
		t.Fatalf("%d waiting adoptions read a's lease %d times, want a few shared reads", n, r)
	}
}

// A forced adoption naming the node believed gone (From) must not dispossess
// a live peer that adopted the session meanwhile: the soak found a forced
// adoption away from a paused node that silently dispossessed the survivor
// which had taken the session over when the paused node's lease expired; the
// survivor kept serving its copy and acknowledged an End that never persisted.
func TestForcedAdoptionFromAGoneNodeSparesALivePeer(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.node("a", c.store(false))
	b := c.node("b", c.store(false))
	ctx := context.Background()
	if _, err := a.EnsureOwned(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	// The operator believes "gone" owns s1, but a (live) does.
	_, err := b.Adopt(ctx, "s1", residency.AdoptOptions{Force: true, From: "gone"})
	var oe *residency.OwnedElsewhereError
	if !errors.As(err, &oe) || oe.Owner != "a" || !oe.Live {
		t.Fatalf("forced adoption from %q of a session live node a owns: %v, want an OwnedElsewhereError naming a", "gone", err)
	}
	if e, ok := a.Epoch("s1"); !ok || e != 1 {
		t.Fatalf("a's epoch after the refused forced adoption: %d %v, want 1 true", e, ok)
	}
	// Naming the real owner forces it away.
	got, err := b.Adopt(ctx, "s1", residency.AdoptOptions{Force: true, From: "a"})
	if err != nil || got.PreviousOwner != "a" || got.Epoch != 2 {
		t.Fatalf("forced adoption from a: %+v %v", got, err)
	}
}

func TestAdoptionRace(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	seed := c.store(false)
	const adopters, rounds = 8, 300
	nodes := make([]*residency.Manager, adopters)
	for i := range nodes {
		nodes[i] = c.node(fmt.Sprintf("n%d", i), c.store(false))
	}
	began := time.Now()
	for r := 0; r < rounds; r++ {
		session := fmt.Sprintf("race-%d", r)
		orphan(t, seed, session, "dead", store.Item{Key: "k", Value: []byte("v")})
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []string
			named   []string
			other   []error
			gate    = make(chan struct{})
		)
		for _, n := range nodes {
			wg.Add(1)
			go func(n *residency.Manager) {
				defer wg.Done()
				<-gate
				a, err := n.Adopt(context.Background(), session, residency.AdoptOptions{})
				mu.Lock()
				defer mu.Unlock()
				var oe *residency.OwnedElsewhereError
				switch {
				case err == nil && len(a.Items) == 1:
					winners = append(winners, n.NodeID())
				case errors.As(err, &oe):
					named = append(named, oe.Owner)
				default:
					other = append(other, fmt.Errorf("%s: %v", n.NodeID(), err))
				}
			}(n)
		}
		close(gate)
		wg.Wait()
		if len(winners) != 1 || len(other) > 0 {
			t.Fatalf("round %d: winners %v, other outcomes %v", r, winners, other)
		}
		for _, name := range named {
			if name != winners[0] {
				t.Fatalf("round %d: a loser named %q, the winner was %q", r, name, winners[0])
			}
		}
	}
	var claims uint64
	for _, n := range nodes {
		claims += n.Stats().ClaimConflicts
	}
	t.Logf("%d rounds of %d adopters in %s; %d losers lost the claim itself, the rest saw the winner's live lease",
		rounds, adopters, time.Since(began).Round(time.Millisecond), claims)
}

func TestNegativeCacheAndSingleFlight(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cs := &counting{Store: c.store(false)}
	m := c.node("a", cs, func(cfg *residency.Config) { cfg.NegativeCacheTTL = 5 * time.Second })
	for i := 0; i < 1000; i++ {
		if _, err := m.Adopt(context.Background(), "nobody", residency.AdoptOptions{}); !errors.Is(err, residency.ErrNotFound) {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if n := cs.ownerReads.Load(); n > 3 {
		t.Fatalf("1000 events for an unknown ID made %d reads, want at most 3", n)
	}
	t.Logf("1000 events for an unknown ID: %d Cassandra read(s)", cs.ownerReads.Load())

	// Single flight: 100 concurrent adoptions of one ID share one read.
	cs2 := &counting{Store: c.store(false), readDelay: 300 * time.Millisecond}
	m2 := c.node("b", cs2, func(cfg *residency.Config) { cfg.NegativeCacheTTL = 0 })
	orphan(t, cs2.Store, "hot", "dead", store.Item{Key: "k", Value: []byte("v")})
	var (
		wg      sync.WaitGroup
		ok      atomic.Int64
		gate    = make(chan struct{})
		failure atomic.Value
	)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			a, err := m2.Adopt(context.Background(), "hot", residency.AdoptOptions{})
			if err != nil {
				failure.Store(err)
				return
			}
			if len(a.Items) == 1 {
				ok.Add(1)
			}
		}()
	}
	close(gate)
	wg.Wait()
	if f := failure.Load(); f != nil {
		t.Fatalf("a concurrent adopt failed: %v", f)
	}
	if n := cs2.ownerReads.Load(); n != 1 || ok.Load() != 100 {
		t.Fatalf("100 concurrent adopts: %d reads, %d got the state; want 1 and 100", n, ok.Load())
	}
}

type pauser struct {
	mu        sync.Mutex
	paused    bool
	discarded []string
}

func (p *pauser) PendingSessions() []string { return nil }
func (p *pauser) Pause()                    { p.mu.Lock(); p.paused = true; p.mu.Unlock() }
func (p *pauser) Resume()                   { p.mu.Lock(); p.paused = false; p.mu.Unlock() }
func (p *pauser) Discard(s ...string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.discarded = append(p.discarded, s...)
	return len(s)
}
func (p *pauser) state() (bool, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused, append([]string(nil), p.discarded...)
}

func TestLeaseExpirySelfFences(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cs := &counting{Store: c.store(false)}
	const ttl = 2 * time.Second
	fencedAt := make(chan []string, 1)
	recovered := make(chan []string, 1)
	p := &pauser{}
	a := c.node("a", cs, func(cfg *residency.Config) {
		cfg.LeaseTTL, cfg.LeaseRenew = ttl, 400*time.Millisecond
		cfg.Flusher = p
		cfg.OnFenced = func(s []string) { fencedAt <- s }
		cfg.OnRecovered = func(lost []string) { recovered <- lost }
	})
	b := c.node("b", c.store(false))
	ctx := context.Background()
	for _, s := range []string{"keep", "lose"} {
		if _, err := a.EnsureOwned(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	stopped := time.Now()
	cs.renewFails.Store(true)
	select {
	case s := <-fencedAt:
		elapsed := time.Since(stopped)
		sort.Strings(s)
		// The node stops acting as owner (LeaseValid) exactly when its lease
		// ends, at most ttl after renewals stopped; the fence is reported when
		// the renewal attempts give up then, give or take scheduling on a
		// loaded machine.
		if elapsed > ttl+500*time.Millisecond || len(s) != 2 || s[0] != "keep" {
			t.Fatalf("fenced after %s with %v; want within %s with [keep lose]", elapsed, s, ttl+500*time.Millisecond)
		}
		t.Logf("self-fenced %s after renewals stopped (lease TTL %s)", elapsed.Round(time.Millisecond), ttl)
	case <-time.After(3 * ttl):
		t.Fatal("no self-fence within 3 lease TTLs")
	}
	if paused, _ := p.state(); !paused || !a.Fenced() {
		t.Fatal("fenced node did not pause flushing")
	}
	if _, err := a.Adopt(ctx, "x", residency.AdoptOptions{}); !errors.Is(err, residency.ErrFenced) {
		t.Fatalf("adopt while fenced: %v", err)
	}
	// Once A's lease has expired, B adopts one of its sessions.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := b.Adopt(ctx, "lose", residency.AdoptOptions{})
		if err == nil {
			break
		}
		if !errors.Is(err, residency.ErrOwnedElsewhere) || time.Now().After(deadline) {
			t.Fatalf("b adopting a's session: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A recovers: it keeps "keep", discards "lose", and resumes flushing.
	cs.renewFails.Store(false)
	select {
	case lost := <-recovered:
		if len(lost) != 1 || lost[0] != "lose" {
			t.Fatalf("recovered losing %v, want [lose]", lost)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no recovery after renewals resumed")
	}
	paused, discarded := p.state()
	if paused || len(discarded) != 1 || discarded[0] != "lose" {
		t.Fatalf("after recovery paused=%v discarded=%v", paused, discarded)
	}
	if _, ok := a.Epoch("keep"); !ok {
		t.Fatal("a lost a session nobody adopted")
	}
	if _, ok := a.Epoch("lose"); ok {
		t.Fatal("a still believes it owns an adopted session")
	}
}

func TestReleaseLetsPeersAdoptAtOnce(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ast := c.store(false)
	a := c.node("a", ast)
	bst := &counting{Store: c.store(false)}
	b := c.node("b", bst)
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		s := fmt.Sprintf("r%d", i)
		e, err := a.EnsureOwned(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		// a's last flush before it releases.
		if err := ast.WriteSession(ctx, &store.Write{Session: s, Epoch: e, Seq: 1000, Items: []store.Item{{Key: "k", Value: []byte(s)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := a.ReleaseAll(ctx); err != nil || n != 20 {
		t.Fatalf("release: %d %v", n, err)
	}
	_ = a.Close(ctx, false) // its lease is still live for seconds
	began := time.Now()
	for i := 0; i < 20; i++ {
		s := fmt.Sprintf("r%d", i)
		got, err := b.Adopt(ctx, s, residency.AdoptOptions{})
		if err != nil || !got.Released || got.PreviousOwner != "a" || got.Epoch != 2 {
			t.Fatalf("adopt %s after release: %+v %v", s, got, err)
		}
		if len(got.Items) != 1 || string(got.Items[0].Value) != s {
			t.Fatalf("adopt %s restored %+v, want a's last write", s, got.Items)
		}
	}
	t.Logf("20 released sessions adopted in %s, with the releasing node's lease still live", time.Since(began).Round(time.Millisecond))
	// A released session has no writer left to fence.
	if n := bst.fences.Load(); n != 0 {
		t.Errorf("%d fencing writes for released sessions, want 0", n)
	}
	// b's writes at its epoch outrank a's.
	if err := bst.WriteSession(ctx, &store.Write{Session: "r0", Epoch: 2, Seq: 1, Items: []store.Item{{Key: "k", Value: []byte("b")}}}); err != nil {
		t.Fatal(err)
	}
	if got := state(t, ast, "r0"); got["k"] != "b" {
		t.Errorf("r0 after b's write: %v", got)
	}
}

// Ending a session leaves its row marked ended with no owner (so a session
// started afresh ranks above the End), removes it from the node and the
// owner index, and makes it unadoptable.
func TestEndedRemovesOwnership(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	st := c.store(false)
	a := c.node("a", st)
	ctx := context.Background()
	if _, err := a.EnsureOwned(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	if err := a.Ended(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	if o, found, err := st.ReadOwner(ctx, "e"); err != nil || !found || !o.Ended || o.Node != "" || o.Epoch != 2 {
		t.Fatalf("owner row after end: %+v found=%v err=%v", o, found, err)
	}
	if _, ok := a.Epoch("e"); ok {
		t.Fatal("an ended session is still owned")
	}
	if _, err := a.Adopt(ctx, "e", residency.AdoptOptions{Force: true}); !errors.Is(err, residency.ErrNotFound) {
		t.Fatalf("adopting an ended session: %v", err)
	}
	if e, err := a.EnsureOwned(ctx, "e"); err != nil || e != 3 {
		t.Fatalf("starting the session afresh: epoch %d, %v (want 3)", e, err)
	}
	if err := a.Ended(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := st.OwnedBy(ctx, "a", func(store.Owned) bool { n++; return true }); err != nil || n != 0 {
		t.Fatalf("index after end: %d entries, %v", n, err)
	}
}

func TestBulkTakeover(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	st := c.store(false)
	const n = 10000
	began := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var failed atomic.Value
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			s := fmt.Sprintf("bulk-%05d", i)
			ctx := context.Background()
			if ok, _, err := st.CreateOwner(ctx, s, "dead", 0, time.Hour); err != nil || !ok {
				failed.Store(fmt.Errorf("create %s: %v %v", s, ok, err))
				return
			}
			if err := st.IndexOwner(ctx, "dead", s, 1, time.Hour); err != nil {
				failed.Store(err)
				return
			}
			if err := st.WriteSession(ctx, &store.Write{Session: s, Epoch: 1, Seq: 1000, Items: []store.Item{{Key: "k", Value: []byte(s)}}}); err != nil {
				failed.Store(err)
			}
		}(i)
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Fatal(f)
	}
	t.Logf("seeded %d sessions of a dead node in %s", n, time.Since(began).Round(time.Millisecond))

	b := c.node("b", c.store(false))
	var restored atomic.Int64
	rep, err := b.Takeover(context.Background(), "dead", residency.TakeoverOptions{
		Rate: 5000, Concurrency: 32,
		OnAdopted: func(a *residency.Adopted) {
			if len(a.Items) == 1 && string(a.Items[0].Value) == a.Session {
				restored.Add(1)
			}
		},
		Progress: func(r residency.TakeoverReport) {
			t.Logf("takeover: %d adopted after %s", r.Adopted, r.Duration.Round(time.Second))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Listed != n || rep.Adopted != n || rep.Failed != 0 || restored.Load() != n {
		t.Fatalf("takeover report %+v, %d restored; want all %d", rep, restored.Load(), n)
	}
	t.Logf("bulk takeover of %d sessions in %s (%.0f sessions/s)", n, rep.Duration.Round(time.Millisecond), float64(n)/rep.Duration.Seconds())
	left := 0
	if err := st.OwnedBy(context.Background(), "dead", func(store.Owned) bool { left++; return true }); err != nil || left != 0 {
		t.Fatalf("dead node's index still lists %d sessions (%v)", left, err)
	}
}

// StopAdopting, the start of a graceful shutdown, ends at once an adoption
// waiting for a live owner's lease (ErrClosed) and a takeover in progress
// (ErrClosed, with its report): the sessions the takeover adopted stay
// owned, indexed under this node, and are released by ReleaseAll. Before,
// the adapter's Close waited for such calls until its deadline and
// released nothing.
func TestStopAdoptingEndsWaitsAndTakeovers(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	st := c.store(false)
	orphan(t, st, "stop-w", "leaving", store.Item{Key: "k", Value: []byte("v")})
	renewAs(t, st, "leaving", 20*time.Second)
	const n = 40
	for i := range n {
		orphan(t, st, fmt.Sprintf("stop-t-%02d", i), "gone", store.Item{Key: "k", Value: []byte("v")})
	}
	b := c.node("b", c.store(false))

	waited := make(chan error, 1)
	go func() {
		_, err := b.Adopt(ctx, "stop-w", residency.AdoptOptions{Wait: time.Minute})
		waited <- err
	}()
	var adopted atomic.Int64
	type result struct {
		rep residency.TakeoverReport
		err error
	}
	took := make(chan result, 1)
	go func() {
		rep, err := b.Takeover(ctx, "gone", residency.TakeoverOptions{Rate: 10, OnAdopted: func(*residency.Adopted) { adopted.Add(1) }})
		took <- result{rep, err}
	}()
	for giveUp := time.Now().Add(20 * time.Second); b.Stats().OwnedElsewhere == 0 || adopted.Load() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(giveUp) {
			t.Fatalf("after 20 s: %d adoptions refused by the live lease (want 1), %d taken over (want 2)", b.Stats().OwnedElsewhere, adopted.Load())
		}
	}

	b.StopAdopting()
	select {
	case err := <-waited:
		if !errors.Is(err, residency.ErrClosed) {
			t.Errorf("the waiting adoption returned %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the waiting adoption still waits 2 s after StopAdopting")
	}
	var r result
	select {
	case r = <-took:
	case <-time.After(2 * time.Second):
		t.Fatal("the takeover still runs 2 s after StopAdopting")
	}
	if !errors.Is(r.err, residency.ErrClosed) || r.rep.Adopted < 2 || r.rep.Adopted >= n || int64(r.rep.Adopted) != adopted.Load() {
		t.Fatalf("takeover: %+v, err %v; want ErrClosed after some of the %d sessions (%d reported adopted)", r.rep, r.err, n, adopted.Load())
	}
	// Every session the report lists is accounted for: the one listed while
	// the pacing waited, and never tried, was counted listed.
	if r.rep.Listed != r.rep.Adopted+r.rep.Skipped+r.rep.Failed {
		t.Errorf("takeover stopped: listed %d, but adopted %d + skipped %d + failed %d", r.rep.Listed, r.rep.Adopted, r.rep.Skipped, r.rep.Failed)
	}
	indexed := 0
	if err := st.OwnedBy(ctx, "b", func(store.Owned) bool { indexed++; return true }); err != nil || indexed != r.rep.Adopted {
		t.Errorf("b's index lists %d sessions (%v), want the %d adopted", indexed, err, r.rep.Adopted)
	}
	if released, err := b.ReleaseAll(ctx); err != nil || released != r.rep.Adopted {
		t.Errorf("ReleaseAll released %d (%v), want the %d adopted", released, err, r.rep.Adopted)
	}
}

func TestResidentSessionsOutliveTheTTL(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	// Renewal starts half a TTL after ownership: 3 s of slack for a slow node.
	const ttl = 6 * time.Second
	hosts, port := cassandratest.Hosts(t)
	st, err := store.Open(context.Background(), store.Options{Hosts: hosts, Port: port, Keyspace: c.ks, StateTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := c.node("a", st, func(cfg *residency.Config) {
		cfg.OwnershipTTL, cfg.RefreshEvery = ttl, 250*time.Millisecond
	})
	ctx := context.Background()
	epoch, err := a.EnsureOwned(ctx, "long")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"long", "orphan"} { // "orphan" is owned by nobody alive
		w := &store.Write{Session: s, Epoch: epoch, Seq: 1000, Items: []store.Item{{Key: "quiet", Value: []byte("unchanged")}}}
		if err := st.WriteSession(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(ttl + 2*time.Second)
	if got := state(t, st, "long"); got["quiet"] != "unchanged" {
		t.Fatalf("a resident session lost an item it did not change: %v (stats %+v)", got, a.Stats())
	}
	if _, found, err := st.ReadOwner(ctx, "long"); err != nil || !found {
		t.Fatalf("a resident session's ownership row expired: found=%v err=%v", found, err)
	}
	if got := state(t, st, "orphan"); len(got) != 0 {
		t.Fatalf("a session nobody owns outlived its TTL: %v", got)
	}
	if a.Stats().Refreshes == 0 {
		t.Fatal("no refresh counted")
	}
}

// lostReply applies the first CreateOwner and then reports a timeout, as a
// lightweight transaction whose reply was lost does.
type lostReply struct {
	*store.Store
	lost atomic.Bool
}

func (l *lostReply) CreateOwner(ctx context.Context, s, node string, ended uint64, ttl time.Duration) (bool, store.Owner, error) {
	created, cur, err := l.Store.CreateOwner(ctx, s, node, ended, ttl)
	if err == nil && created && l.lost.CompareAndSwap(false, true) {
		return false, store.Owner{}, errors.New("injected: write timeout, outcome unknown")
	}
	return created, cur, err
}

func TestCreateWhoseReplyWasLostIsOurs(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.node("a", &lostReply{Store: c.store(false)})
	ctx := context.Background()
	if _, err := a.EnsureOwned(ctx, "s"); err == nil {
		t.Fatal("the injected timeout did not surface")
	}
	// The retry (the buffer retries transient errors) finds a row naming this
	// node that it does not hold: it cannot tell its own lost create from an
	// earlier incarnation's row, so it claims and fences it (epoch 2).
	e, err := a.EnsureOwned(ctx, "s")
	if err != nil || e != 2 {
		t.Fatalf("retry after a lost reply: epoch %d, %v; want 2, nil", e, err)
	}
	// Another node's row is still another node's.
	b := c.node("b", c.store(false))
	var oe *residency.OwnedElsewhereError
	if _, err := b.EnsureOwned(ctx, "s"); !errors.As(err, &oe) || oe.Owner != "a" {
		t.Fatalf("b creating a's session: %v", err)
	}
}

// A session released by an earlier incarnation of a node (graceful close) and
// then committed to by its next incarnation must be claimed and fenced by it:
// taking the released row as its own would let a peer adopt it, released,
// without a fence, and both would own it.
func TestRowOfEarlierIncarnationIsClaimedNotTaken(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	old, err := residency.New(residency.Config{NodeID: "a", LeaseTTL: 3 * time.Second}, c.store(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := old.EnsureOwned(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if n, err := old.ReleaseAll(ctx); err != nil || n != 1 {
		t.Fatalf("release: %d %v", n, err)
	}
	if err := old.Close(ctx, true); err != nil {
		t.Fatal(err)
	}
	a := c.node("a", c.store(false))
	e, err := a.EnsureOwned(ctx, "s")
	if err != nil || e != 2 {
		t.Fatalf("the next incarnation recording s: epoch %d, %v; want 2 (claimed)", e, err)
	}
	b := c.node("b", c.store(false))
	var oe *residency.OwnedElsewhereError
	if _, err := b.Adopt(ctx, "s", residency.AdoptOptions{}); !errors.As(err, &oe) || oe.Owner != "a" || !oe.Live {
		t.Fatalf("a peer adopting s: %v, want owned by live a", err)
	}
}

// claimedMeanwhile is a store where, after a create finds the row naming
// this node (an earlier incarnation's), a peer adopts the session before the
// creating node can.
type claimedMeanwhile struct {
	*store.Store
	peer func()
}

func (c *claimedMeanwhile) CreateOwner(ctx context.Context, session, node string, ended uint64, ttl time.Duration) (bool, store.Owner, error) {
	ok, cur, err := c.Store.CreateOwner(ctx, session, node, ended, ttl)
	if c.peer != nil {
		c.peer()
	}
	return ok, cur, err
}

// A create that finds a row of this node's earlier incarnation adopts it;
// when a live peer claimed it in between (an operator's forced adoption away
// from this node), the create must be refused naming the peer, not force the
// session away from it.
func TestCreateOverAnEarlierIncarnationsRowSparesAPeerThatClaimedIt(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	orphan(t, c.store(false), "dup", "a", store.Item{Key: "k", Value: []byte("v")})
	p := c.node("p", c.store(false))
	st := &claimedMeanwhile{Store: c.store(false)}
	a := c.node("a", st)
	st.peer = func() {
		if _, err := p.Adopt(ctx, "dup", residency.AdoptOptions{Force: true, From: "a"}); err != nil {
			t.Errorf("peer's forced adoption: %v", err)
		}
	}
	_, err := a.EnsureOwned(ctx, "dup")
	var oe *residency.OwnedElsewhereError
	if !errors.As(err, &oe) || oe.Owner != "p" {
		t.Fatalf("create over the earlier incarnation's row, claimed meanwhile by p: %v, want an OwnedElsewhereError naming p", err)
	}
	if e, ok := p.Epoch("dup"); !ok || e != 2 {
		t.Fatalf("p's hold after a's create: %d %v", e, ok)
	}
	if pk, err := p.Peek(ctx, "dup"); err != nil || pk.Owner != "p" {
		t.Fatalf("owner after a's create: %+v %v, want p", pk, err)
	}
}

// A peer's lease seen expired vouches for the claims it made before: their
// adoptions need no lease read. A claim made after (the peer came back and
// recovered or adopted the session) is judged by a fresh read of the lease.
func TestLeaseSeenExpiredVouchesOnlyForOlderClaims(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	st := c.store(false)
	for _, s := range []string{"old1", "old2", "old3"} {
		orphan(t, st, s, "dead", store.Item{Key: "k", Value: []byte(s)})
	}
	skew := func(cfg *residency.Config) { cfg.MaxClockSkew = 20 * time.Millisecond }
	time.Sleep(100 * time.Millisecond) // the claims are more than 2 x skew older than the first lease read
	b := c.node("b", c.store(false), skew)
	if _, err := b.Adopt(ctx, "old1", residency.AdoptOptions{}); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.LeaseReads != 1 || s.LeaseVouched != 0 {
		t.Fatalf("first adoption of a dead node's session: %d lease reads, %d vouched; want 1, 0", s.LeaseReads, s.LeaseVouched)
	}
	if _, err := b.Adopt(ctx, "old2", residency.AdoptOptions{}); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.LeaseReads != 1 || s.LeaseVouched != 1 {
		t.Fatalf("second adoption: %d lease reads, %d vouched; want 1, 1", s.LeaseReads, s.LeaseVouched)
	}
	// The node comes back and takes old3 again: a claim newer than the read
	// that saw its lease expired.
	d := c.node("dead", c.store(false), skew)
	if _, err := d.Adopt(ctx, "old3", residency.AdoptOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := b.Adopt(ctx, "old3", residency.AdoptOptions{})
	var oe *residency.OwnedElsewhereError
	if !errors.As(err, &oe) || oe.Owner != "dead" || !oe.Live {
		t.Fatalf("adoption of a session the node took again after its lease was seen expired: %v, want OwnedElsewhereError naming dead", err)
	}
	if s := b.Stats(); s.LeaseReads != 2 || s.LeaseVouched != 1 {
		t.Fatalf("after the node came back: %d lease reads, %d vouched; want 2, 1", s.LeaseReads, s.LeaseVouched)
	}
	if e, ok := d.Epoch("old3"); !ok || e != 2 {
		t.Fatalf("the node's hold of old3: %d %v", e, ok)
	}
}

// A session recorded by an earlier incarnation of this node, with state
// stored, that the next incarnation creates anew (a host that commits
// without adopting it first) must not take the stored state for the new
// session's: the claim and fence of the create path would restore the old
// items under the new session's changes, a state the session never had (I2).
// The create is refused like any other ID already taken, naming this node,
// and the row is left for Adopt, which returns the stored state.
func TestCreateOverOwnEarlierRowWithStateIsRefused(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	orphan(t, c.store(false), "kept", "a", store.Item{Key: "k", Value: []byte("old")})
	a := c.node("a", c.store(false))
	_, err := a.EnsureOwned(ctx, "kept")
	var oe *residency.OwnedElsewhereError
	if !errors.As(err, &oe) || oe.Owner != "a" || !oe.Stored {
		t.Fatalf("creating a session this node stored earlier: %v, want an OwnedElsewhereError naming a, Stored", err)
	}
	if e, ok := a.Epoch("kept"); ok {
		t.Fatalf("the refused create holds the session at epoch %d", e)
	}
	ad, err := a.Adopt(ctx, "kept", residency.AdoptOptions{})
	if err != nil || len(ad.Items) != 1 || string(ad.Items[0].Value) != "old" {
		t.Fatalf("adopting it after the refusal: %+v %v, want the stored item", ad, err)
	}
}
