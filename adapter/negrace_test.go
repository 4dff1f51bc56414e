package adapter

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// ownerReadGate holds the reply of ReadOwner of one session (read first)
// until released.
type ownerReadGate struct {
	residency.Store
	mu      sync.Mutex
	hold    map[string]chan struct{}
	holding chan string
}

func (g *ownerReadGate) ReadOwner(ctx context.Context, session string) (store.Owner, bool, error) {
	o, found, err := g.Store.ReadOwner(ctx, session)
	g.mu.Lock()
	release, held := g.hold[session]
	delete(g.hold, session)
	g.mu.Unlock()
	if held {
		g.holding <- session
		<-release
	}
	return o, found, err
}

// A Peek whose read found no row, answered after this node recorded the
// session (the first flush of a new session), must not cache the absence
// the creation cleared. It used to: ensureOwned forgets a cached absence
// once the session is held, but the lookup in flight remembered it again
// afterwards, and Peek then answered ErrNotFound for a session this very
// node owned and had persisted, for the cache's TTL.
func TestAPeekRacingACreationDoesNotCacheAStaleAbsence(t *testing.T) {
	g := &ownerReadGate{hold: map[string]chan struct{}{"x": make(chan struct{})}, holding: make(chan string, 1)}
	release := g.hold["x"]
	cfg := testConfig(t, "negrace", cassandratest.Keyspace(t))
	cfg.NegativeCacheTTL = time.Minute
	a := openNode(t, cfg, withResidencyStore(func(st residency.Store) residency.Store { g.Store = st; return g }))
	ctx := context.Background()
	peeked := make(chan error, 1)
	go func() {
		_, err := a.Peek(ctx, "x")
		peeked <- err
	}()
	<-g.holding // its read found nothing
	if err := a.Commit("x", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	close(release)
	if err := <-peeked; !errors.Is(err, ErrNotFound) {
		t.Fatalf("first peek: %v", err)
	}
	if _, owned := a.res.Epoch("x"); !owned {
		t.Fatal("x not owned after its flush")
	}
	s, err := a.Peek(ctx, "x")
	if err != nil {
		t.Fatalf("peek of a session this node created and flushed: %v", err)
	}
	if s.Owner != "negrace" || len(s.Items) != 1 {
		t.Fatalf("peek: %+v", s)
	}
}
