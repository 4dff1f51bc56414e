package residency

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
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

func (s *slowIndex) UnindexOwner(ctx context.Context, node, session string) error {
	err := s.Store.UnindexOwner(ctx, node, session)
	s.unindexd <- session
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
