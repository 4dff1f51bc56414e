package adapter

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/residency"
)

// Close with a deadline returns by that deadline while Cassandra stops
// answering (a partition: requests neither fail nor return), reports the
// session it could not write, and says why. Before, releasing the sessions
// written ran without a deadline and waited out every request's timeout.
func TestCloseHonoursDeadlineWhileCassandraUnreachable(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	hosts, port := cassandratest.Hosts(t)
	proxy := newStallProxy(t, hosts[0], port)
	cfg := testConfig(t, "close-deadline", ks)
	cfg.Hosts, cfg.Port = []string{"127.0.0.1"}, proxy.port()
	cfg.Timeout = 20 * time.Second // longer than the deadline: only Close's own bound can keep it
	cfg.LeaseTTL = 30 * time.Second
	a := openNode(t, cfg)
	for _, s := range []string{"written-1", "written-2", "written-3"} {
		if err := a.Commit(s, put("k", "v")); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, a)
	proxy.stall()
	if err := a.Commit("unwritten", put("k", "v")); err != nil {
		t.Fatal(err)
	}

	const deadline = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	began := time.Now()
	rep, err := a.Close(ctx)
	took := time.Since(began)
	if took > deadline+500*time.Millisecond {
		t.Errorf("Close took %v with a %v deadline", took, deadline)
	}
	if len(rep.Unwritten.Sessions) != 1 || rep.Unwritten.Sessions[0].Session != "unwritten" || rep.Unwritten.Items != 1 {
		t.Errorf("report %+v: want the one unwritten session", rep)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close error %v: want it to say the deadline passed", err)
	}
	if _, err := a.Close(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
}

// An Adopt that reaches residency after it closed gets residency's closed
// error: it must come out as the adapter's ErrClosed (there were two
// ErrClosed, and adapter.ErrClosed did not match residency's). The window is
// opened here by closing residency alone; then Adopts race a real Close,
// which must let them finish before closing residency (with -race: no data
// race) and answer each with nil, ErrNotFound or the adapter's ErrClosed.
func TestAdoptRacingCloseReturnsAdaptersErrClosed(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	ctx := context.Background()
	a := openNode(t, testConfig(t, "closing", ks))
	if err := a.res.Close(ctx, false); err != nil { // what Close does after its check
		t.Fatal(err)
	}
	if _, err := a.Adopt(ctx, "any"); !errors.Is(err, ErrClosed) {
		t.Errorf("Adopt after residency closed: %v, want adapter.ErrClosed", err)
	}

	b := openNode(t, testConfig(t, "racing", ks))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := b.Adopt(ctx, "race-"+string(rune('a'+i))+"-"+time.Now().Format("150405.000000"))
				switch {
				case err == nil, errors.Is(err, ErrNotFound):
				case errors.Is(err, ErrClosed):
					return
				default:
					errs <- err
					return
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := b.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Adopt racing Close: %v (%T), want nil, ErrNotFound or adapter.ErrClosed", err, err)
	}
}

// A second process with a node ID in use waits for the other's lease, then
// fails with the adapter's *NodeIDInUseError.
func TestNodeIDInUseIsTheAdaptersError(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	cfg := testConfig(t, "same-id", ks)
	openNode(t, cfg)
	// Long enough to connect and check the schema on a busy machine; the
	// wait for the lease then lasts until it ends.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	b, err := Open(ctx, cfg)
	if err == nil {
		_, _ = b.Close(context.Background())
		t.Fatal("a second adapter opened with a node ID in use")
	}
	var inUse *NodeIDInUseError
	if !errors.As(err, &inUse) || inUse.Node != "same-id" || !errors.Is(err, ErrNodeIDInUse) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open with a node ID in use: %v (%T), want an *adapter.NodeIDInUseError", err, err)
	}
}

// Two nodes create the same session ID: the first record (made as each
// accepts the session's first changes) wins; the other's changes are dropped
// and reported to OnDropped with the adapter's *OwnedElsewhereError naming
// the winner.
func TestCreateRaceReportsOwnedElsewhere(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	type drop struct {
		node, session string
		err           error
	}
	drops := make(chan drop, 4)
	hooks := func(node string) Option {
		return WithHooks(Hooks{OnDropped: func(session string, _ int, err error) { drops <- drop{node, session, err} }})
	}
	cfgA, cfgB := testConfig(t, "creator-a", ks), testConfig(t, "creator-b", ks)
	for _, c := range []*Config{&cfgA, &cfgB} {
		c.FlushDelay, c.MaxWindow = time.Minute, 10*time.Minute // nothing written before both committed
	}
	a, b := openNode(t, cfgA, hooks("creator-a")), openNode(t, cfgB, hooks("creator-b"))
	if err := a.Commit("dup", put("who", "a")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, ok := a.res.Epoch("dup"); ok {
			break // a's record landed first
		}
		if time.Now().After(deadline) {
			t.Fatal("creator-a did not record its new session within 10 s")
		}
	}
	if err := b.Commit("dup", put("who", "b")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	flush(t, b)
	var d drop
	select {
	case d = <-drops:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnDropped for the node that lost the create race")
	}
	var oe *OwnedElsewhereError
	if d.session != "dup" || d.node != "creator-b" || !errors.As(d.err, &oe) || oe.Owner != "creator-a" {
		t.Fatalf("OnDropped(%s, %s, %v): want creator-b's changes dropped with an *OwnedElsewhereError naming creator-a", d.node, d.session, d.err)
	}
	p, err := b.Peek(context.Background(), "dup")
	if err != nil || p.Owner != "creator-a" || string(p.Map()["who"]) != "a" {
		t.Fatalf("peek: %+v %v", p, err)
	}
}

// Takeover hands the host the adapter's own *Session, items included.
func TestTakeoverHandsAdapterSessions(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	a := openNode(t, testConfig(t, "gone", ks))
	for _, s := range []string{"t1", "t2", "t3"} {
		if err := a.Commit(s, put("id", s)); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, a)
	a.crash()
	b := openNode(t, testConfig(t, "heir", ks))
	var mu sync.Mutex
	got := map[string]string{}
	deadline := time.Now().Add(20 * time.Second)
	for {
		rep, err := b.Takeover(context.Background(), "gone", TakeoverOptions{OnAdopted: func(s *Session) {
			mu.Lock()
			got[s.ID] = string(s.Map()["id"])
			mu.Unlock()
			if s.Owner != "heir" || s.PreviousOwner != "gone" || s.Epoch != 2 {
				t.Errorf("adopted %+v", s)
			}
		}})
		var oe *OwnedElsewhereError
		if errors.As(err, &oe) && oe.Live && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond) // the lease has not expired yet
			continue
		}
		if err != nil || rep.Adopted != 3 || rep.Node != "gone" {
			t.Fatalf("takeover: %+v %v", rep, err)
		}
		break
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || got["t1"] != "t1" || got["t2"] != "t2" || got["t3"] != "t3" {
		t.Fatalf("OnAdopted received %v", got)
	}
}

// Close ends an adoption that waits for a dead owner's lease (Adopt with
// AdoptOptions.Wait, what a host does for a redirected request) with
// ErrClosed, and releases what this node wrote. Before, Close waited for
// the adoption to finish before releasing anything: with the owner's lease
// running past Close's deadline, it released nothing and returned the
// deadline's error, so peers waited out this node's lease for sessions it
// had written and could have handed over.
func TestCloseEndsAdoptionsWaitingForALease(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	ctx := context.Background()
	cb := testConfig(t, "wait-dead", ks)
	cb.LeaseTTL = 30 * time.Second // outlives Close's deadline below
	b := openNode(t, cb)
	if err := b.Commit("theirs", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	flush(t, b)
	b.crash()

	a := openNode(t, testConfig(t, "wait-closing", ks))
	if err := a.Commit("mine", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	adopted := make(chan error, 1)
	go func() {
		_, err := a.Adopt(ctx, "theirs", AdoptOptions{Wait: time.Minute})
		adopted <- err
	}()
	for giveUp := time.Now().Add(10 * time.Second); a.res.Stats().OwnedElsewhere == 0; {
		if time.Now().After(giveUp) {
			t.Fatal("the adoption never met the dead owner's live lease")
		}
		time.Sleep(5 * time.Millisecond)
	}

	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rep, err := a.Close(closeCtx)
	if err != nil || rep.Released != 1 {
		t.Errorf("Close: released %d, err %v; want the one session written released and no error", rep.Released, err)
	}
	select {
	case err := <-adopted:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("the waiting Adopt returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the waiting Adopt did not return after Close")
	}
}

// CommitShared is refused with ErrClosed as soon as Close has begun, as
// Commit is. Before, the shared families' buffer was closed only after the
// node's buffer had drained, so a shared change committed meanwhile was
// acknowledged and then handed a drain whose deadline could have passed.
func TestCommitSharedIsRefusedOnceCloseBegins(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "close-shared", cassandratest.Keyspace(t))
	cfg.Families = Families{{Name: "settings", Shared: true}}
	hold, entered := make(chan struct{}), make(chan struct{}, 1)
	a := openNode(t, cfg, WithHooks(Hooks{OnFlushed: func(ev FlushEvent) {
		if ev.Session == "call-1" {
			entered <- struct{}{}
			<-hold // the drain waits for this write
		}
	}}))
	if err := a.Commit("call-1", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	<-entered
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := a.Close(ctx)
		closed <- err
	}()
	for giveUp := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if err := a.Commit("call-2", put("k", "v")); errors.Is(err, ErrClosed) {
			break
		}
		if time.Now().After(giveUp) {
			close(hold)
			t.Fatal("Commit still accepted 5 s into Close")
		}
	}
	sharedErr := a.CommitShared("settings:codecs", put("audio", "opus"))
	close(hold)
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if !errors.Is(sharedErr, ErrClosed) {
		t.Errorf("CommitShared while Close drained: %v, want ErrClosed (Commit returned it)", sharedErr)
	}
}

// Takeover refuses a node ID no node may have, and this node's own, with a
// *LimitError naming the field. Before, a malformed ID was looked up as a
// dead node and the takeover "succeeded" with nothing listed, and this
// node's own ID came back as residency's bare error.
func TestTakeoverRefusesBadNodeIDs(t *testing.T) {
	t.Parallel()
	a := openNode(t, testConfig(t, "taker", cassandratest.Keyspace(t)))
	for node, want := range map[string]string{
		"":                      "node ID is empty; it must be 1 to 64 bytes",
		"node b":                `node ID "node b" must be bytes of [A-Za-z0-9._:-]`,
		strings.Repeat("n", 65): "node ID is 65 bytes, over the limit of 64 bytes",
		"taker":                 `node ID "taker" is this node's own`,
	} {
		rep, err := a.Takeover(context.Background(), node, TakeoverOptions{})
		var le *LimitError
		if !errors.As(err, &le) || !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), want) {
			t.Errorf("Takeover(%q) = listed %d, err %v; want a *LimitError saying %q", node, rep.Listed, err, want)
		}
	}
}

// AdoptOptions.From without Force was ignored: the caller meant a forced
// adoption away from a node known to be gone, and got an unforced one
// (refused by that node's live lease) without a word. It is refused now, as
// is a From that no node ID can be, before anything is looked up.
func TestAdoptRefusesABadFrom(t *testing.T) {
	t.Parallel()
	a := openNode(t, testConfig(t, "adopter", cassandratest.Keyspace(t)))
	for _, c := range []struct {
		opts AdoptOptions
		want string
	}{
		{AdoptOptions{From: "gone"}, `AdoptOptions.From "gone" is set without AdoptOptions.Force`},
		{AdoptOptions{From: "gone", Wait: time.Second}, `AdoptOptions.From "gone" is set without AdoptOptions.Force`},
		{AdoptOptions{Force: true, From: "node b"}, `AdoptOptions.From "node b" must be bytes of [A-Za-z0-9._:-]`},
		{AdoptOptions{Force: true, From: strings.Repeat("n", 65)}, "AdoptOptions.From is 65 bytes, over the limit of 64 bytes"},
	} {
		got, err := a.Adopt(context.Background(), "s-1", c.opts)
		var le *LimitError
		if !errors.As(err, &le) || !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Adopt(%+v) = %v, %v; want a *LimitError saying %q", c.opts, got, err, c.want)
		}
	}
	if got, err := a.Adopt(context.Background(), "s-1", AdoptOptions{Force: true, From: "gone"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a forced adoption from a valid node of an unknown session = %v, %v; want ErrNotFound", got, err)
	}
}

// stuckRelease is a store on which the release of one session never
// answers (its replica stalls), whatever the context says.
type stuckRelease struct {
	residency.Store
	session string
	unstick chan struct{}
}

func (s *stuckRelease) Release(ctx context.Context, session, node string, epoch uint64, ttl time.Duration) (bool, error) {
	if session == s.session {
		<-s.unstick
		return false, context.DeadlineExceeded
	}
	return s.Store.Release(ctx, session, node, epoch, ttl)
}

// When Close's deadline passes while releases are under way, the report
// counts the releases that landed by then: the host logs it to learn which
// sessions peers may take at once. It read 0 whenever one release was still
// outstanding at the deadline, though all the others had landed.
func TestCloseCountsTheReleasesThatLandedBeforeItsDeadline(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	st := &stuckRelease{session: "stuck", unstick: make(chan struct{})}
	t.Cleanup(func() { close(st.unstick) })
	a := openNode(t, testConfig(t, "close-partial-release", ks),
		withResidencyStore(func(inner residency.Store) residency.Store { st.Store = inner; return st }))
	ids := []string{"stuck", "free-1", "free-2", "free-3"}
	for _, s := range ids {
		if err := a.Commit(s, put("k", "v")); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, a)
	peer := openNode(t, testConfig(t, "close-partial-release-peer", ks))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rep, err := a.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close error %v: want it to say the deadline passed", err)
	}
	if rep.Released != len(ids)-1 {
		t.Errorf("Close released %d by its deadline, want %d (all but the stuck one)", rep.Released, len(ids)-1)
	}
	for _, s := range ids[1:] {
		if o, found, err := peer.store.ReadOwner(context.Background(), s); err != nil || !found || !o.Released {
			t.Errorf("%s: row %+v found %v, %v; want it released", s, o, found, err)
		}
	}
}
