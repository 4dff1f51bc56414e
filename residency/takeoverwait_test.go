package residency

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// slowIndex holds the owner-index update of one session until released.
type slowIndex struct {
	*memstore.Store
	mu       sync.Mutex
	hold     string
	held     chan struct{}
	release  chan struct{}
	unindexd chan string
}

func (s *slowIndex) IndexOwner(ctx context.Context, node, session string, epoch uint64, ttl time.Duration) error {
	s.mu.Lock()
	h := s.hold
	s.mu.Unlock()
	if session == h {
		close(s.held)
		<-s.release
	}
	return s.Store.IndexOwner(ctx, node, session, epoch, ttl)
}

func (s *slowIndex) UnindexOwner(ctx context.Context, node, session string, epoch uint64) error {
	err := s.Store.UnindexOwner(ctx, node, session, epoch)
	s.unindexd <- session
	return err
}

// MoveIndex (the entries of adoptions from a peer, moved in groups) holds as
// IndexOwner does, and reports each session unindexed from node from.
func (s *slowIndex) MoveIndex(ctx context.Context, from, to string, moved []store.Owned, stale []string, ttl time.Duration) error {
	s.mu.Lock()
	h := s.hold
	s.mu.Unlock()
	for _, o := range moved {
		if o.Session == h {
			close(s.held)
			<-s.release
		}
	}
	err := s.Store.MoveIndex(ctx, from, to, moved, stale, ttl)
	for _, o := range moved {
		s.unindexd <- o.Session
	}
	return err
}

// Adoptions on the survivor while a takeover ends (the ordinary failover:
// hosts adopt on demand while the takeover runs) race nothing of it. Before,
// Takeover ended by waiting on the WaitGroup of every adoption's background
// index update, with no lock against the adoptions adding to it: an Add
// from zero concurrent with Wait, which sync.WaitGroup forbids (a panic, a
// race -race reports).
func TestTakeoverDoesNotWaitOnAdoptionsIndexUpdates(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	// Two sessions of dead node x (no lease).
	for _, s := range []string{"s1", "s2"} {
		if ok, _, err := st.CreateOwner(ctx, s, "x", 0, time.Hour); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	w := &slowIndex{Store: st, held: make(chan struct{}), release: make(chan struct{}), unindexd: make(chan string, 4)}
	m := started(t, Config{NodeID: "b", LeaseTTL: 10 * time.Minute}, w)

	w.mu.Lock()
	w.hold = "s1"
	w.mu.Unlock()
	if _, err := m.Adopt(ctx, "s1", AdoptOptions{}); err != nil {
		t.Fatal(err)
	}
	<-w.held // s1's index update is in flight: indexing counter 1

	done := make(chan error, 1)
	go func() { _, err := m.Takeover(ctx, "x", TakeoverOptions{}); done <- err }()
	time.Sleep(50 * time.Millisecond) // the takeover (nothing listed) waits in m.indexing.Wait

	close(w.release)
	<-w.unindexd                     // s1's update ends: the counter drops to 0
	time.Sleep(5 * time.Millisecond) // its Done has run
	if _, err := m.Adopt(ctx, "s2", AdoptOptions{}); err != nil {
		t.Fatal(err)
	}
	<-w.unindexd
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// burstCounter counts the sessions whose states are read and whose
// owner-index entries are written, and holds each claim for claimDelay, so
// that woken adoptions are still under way when a takeover of their node
// lists them.
type burstCounter struct {
	*memstore.Store
	read, indexed atomic.Int64
	indexWrites   atomic.Int64 // requests to the owner index
	claimDelay    time.Duration
}

func (s *burstCounter) IndexOwner(ctx context.Context, node, session string, epoch uint64, ttl time.Duration) error {
	s.indexed.Add(1)
	s.indexWrites.Add(1)
	return s.Store.IndexOwner(ctx, node, session, epoch, ttl)
}

func (s *burstCounter) UnindexOwner(ctx context.Context, node, session string, epoch uint64) error {
	s.indexWrites.Add(1)
	return s.Store.UnindexOwner(ctx, node, session, epoch)
}

func (s *burstCounter) MoveIndex(ctx context.Context, from, to string, moved []store.Owned, stale []string, ttl time.Duration) error {
	s.indexed.Add(int64(len(moved)))
	s.indexWrites.Add(1)
	return s.Store.MoveIndex(ctx, from, to, moved, stale, ttl)
}

// orphans makes n sessions of node a, indexed under it, each with one item,
// and a's lease live for a second from now.
func orphans(t *testing.T, st *burstCounter, n int) {
	t.Helper()
	orphansOfTheDead(t, st, n)
	if err := st.RenewLease(context.Background(), "a", time.Second, 100*time.Millisecond, time.Now(), "inc-a"); err != nil {
		t.Fatal(err)
	}
}

// orphansOfTheDead makes n sessions of node a, indexed under it, each with
// one item; a holds no lease.
func orphansOfTheDead(t *testing.T, st *burstCounter, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		s := fmt.Sprint("w-", i)
		if ok, _, err := st.CreateOwner(ctx, s, "a", 0, time.Hour); err != nil || !ok {
			t.Fatal(ok, err)
		}
		if err := st.IndexOwner(ctx, "a", s, 1, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := st.WriteSession(ctx, &store.Write{Session: s, Epoch: 1, Seq: 1, Items: []store.Item{{Key: "k", Value: []byte(s)}}}); err != nil {
			t.Fatal(err)
		}
	}
	st.indexed.Store(0) // the orphans' own entries
	st.indexWrites.Store(0)
}

// adoptWaiting starts an adoption of each of a's n sessions on m, waiting
// for a's lease; the channel returned gets their failures, and closes once
// all have ended.
func adoptWaiting(m *Manager, n int) <-chan error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := fmt.Sprint("w-", i)
			a, err := m.Adopt(context.Background(), s, AdoptOptions{Wait: 10 * time.Second})
			if err == nil && (len(a.Items) != 1 || string(a.Items[0].Value) != s) {
				err = fmt.Errorf("%s adopted with %v", s, a.Items)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	go func() { wg.Wait(); close(errs) }()
	return errs
}

func (s *burstCounter) ReadState(ctx context.Context, session string) ([]store.Item, error) {
	s.read.Add(1)
	return s.Store.ReadState(ctx, session)
}

func (s *burstCounter) ReadStates(ctx context.Context, sessions []string, items [][]store.Item, errs []error) {
	s.read.Add(int64(len(sessions)))
	s.Store.ReadStates(ctx, sessions, items, errs)
}

func (s *burstCounter) Claim(ctx context.Context, session string, prev store.Owner, node string, ttl time.Duration) (bool, store.Owner, error) {
	time.Sleep(s.claimDelay)
	return s.Store.Claim(ctx, session, prev, node, ttl)
}

// When a node dies, its hosts' adoptions wait for its lease to end, and the
// reference node's watcher starts a takeover of the node the moment it
// does: both want the same sessions at once. The takeover joins the
// adoptions under way; it read every one of their states ahead all the
// same, in the burst the failover time measures, and moved their
// owner-index entries again after each adoption had moved its own: each
// state read twice and each entry written twice (2n of each for n sessions
// before the fix).
func TestATakeoverReadsNoStateOfSessionsAnAdoptionIsWorkingOn(t *testing.T) {
	ctx := context.Background()
	st := &burstCounter{Store: memstore.New(), claimDelay: 200 * time.Millisecond}
	const n = 40
	orphans(t, st, n)
	m := started(t, Config{NodeID: "b", LeaseTTL: 10 * time.Second}, st)

	errs := adoptWaiting(m, n)
	// The watcher: a takeover asked for until a's lease has ended.
	var rep TakeoverReport
	for {
		var err error
		rep, err = m.Takeover(ctx, "a", TakeoverOptions{})
		var oe *OwnedElsewhereError
		if errors.As(err, &oe) && oe.Live {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	for err := range errs {
		t.Fatal(err)
	}
	if rep.Listed != n || rep.Adopted+rep.Skipped != n {
		t.Fatalf("takeover: %+v; want %d listed, each adopted with an adoption or skipped", rep, n)
	}
	if r := st.read.Load(); r != n {
		t.Fatalf("%d states read for %d sessions adopted, want each read once", r, n)
	}
	m.indexing.Wait() // the adoptions' entries, moved in the background
	if r := st.indexed.Load(); r != n {
		t.Fatalf("%d owner-index entries written for %d sessions adopted, want one each", r, n)
	}
}

// The adoptions of a dead node's sessions, woken together when its lease
// ends, move their owner-index entries several to a request, as a
// takeover does: each moved its own before, an insert and a delete, two
// requests a session in the burst.
func TestABurstOfWokenAdoptionsMovesItsIndexEntriesInGroups(t *testing.T) {
	st := &burstCounter{Store: memstore.New()}
	const n = 40
	orphans(t, st, n)
	m := started(t, Config{NodeID: "b", LeaseTTL: 10 * time.Second}, st)
	for err := range adoptWaiting(m, n) {
		t.Fatal(err)
	}
	m.indexing.Wait()
	if w := st.indexWrites.Load(); w == 0 || w > n/4 {
		t.Fatalf("%d sessions adopted in a burst: %d requests to the owner index, want a few", n, w)
	}
	indexedUnderB(t, st, m, n)
}

// indexedUnderB checks that a's n orphans are owned by m (node b) and
// indexed under b at the epoch m owns them at, and no longer under a.
func indexedUnderB(t *testing.T, st *burstCounter, m *Manager, n int) {
	t.Helper()
	listed := map[string]uint64{}
	for _, node := range []string{"a", "b"} {
		if err := st.OwnedBy(context.Background(), node, func(o store.Owned) bool { listed[node+"/"+o.Session] = o.Epoch; return true }); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		s := fmt.Sprint("w-", i)
		e, ok := m.Epoch(s)
		if !ok || listed["b/"+s] != e {
			t.Errorf("%s: owned at %d (%v), indexed under b at %d", s, e, ok, listed["b/"+s])
		}
		if _, ok := listed["a/"+s]; ok {
			t.Errorf("%s: still indexed under a", s)
		}
	}
}

// Adoptions one at a time from a peer (a host adopting each session a load
// balancer redirects) move their owner-index entries in groups too: each
// moved its own, an insert and a delete, two requests beside the adoptions
// that followed it (a crash adoption's p99 stood over its floor, which moves
// no entry).
func TestAdoptionsOneAtATimeMoveTheirIndexEntriesInGroups(t *testing.T) {
	ctx := context.Background()
	st := &burstCounter{Store: memstore.New()}
	const n = 40
	orphansOfTheDead(t, st, n)
	m := started(t, Config{NodeID: "b", LeaseTTL: 10 * time.Second}, st)
	for i := range n {
		s := fmt.Sprint("w-", i)
		a, err := m.Adopt(ctx, s, AdoptOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Items) != 1 || string(a.Items[0].Value) != s {
			t.Fatalf("%s adopted with %v", s, a.Items)
		}
	}
	m.indexing.Wait()
	// Each alone: 2n requests. Grouped: about one per 50 ms (1-2 here);
	// n/2 leaves room for a machine slow enough to take a second over them.
	if w := st.indexWrites.Load(); w == 0 || w > n/2 {
		t.Fatalf("%d sessions adopted one at a time: %d requests to the owner index, want far fewer than one each", n, w)
	}
	indexedUnderB(t, st, m, n)
}
