package adapter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// createEndGate wraps the store residency talks to: CreateOwner of a session in
// hold waits until its channel is closed; EndOwner of a session in lose
// applies, then fails as if its reply were lost (once).
type createEndGate struct {
	residency.Store
	mu      sync.Mutex
	hold    map[string]chan struct{}
	holding chan string
	lose    map[string]bool
	lost    chan string
}

func (g *createEndGate) CreateOwner(ctx context.Context, session, node string, ended uint64, ttl time.Duration) (bool, store.Owner, error) {
	g.mu.Lock()
	release, held := g.hold[session]
	delete(g.hold, session)
	g.mu.Unlock()
	if held {
		g.holding <- session
		<-release
	}
	return g.Store.CreateOwner(ctx, session, node, ended, ttl)
}

func (g *createEndGate) EndOwner(ctx context.Context, session, node string, epoch uint64, ttl time.Duration) (bool, error) {
	g.mu.Lock()
	lose := g.lose[session]
	delete(g.lose, session)
	g.mu.Unlock()
	applied, err := g.Store.EndOwner(ctx, session, node, epoch, ttl)
	if lose && err == nil {
		g.lost <- session
		return false, fmt.Errorf("end owner of %s: reply lost (applied: %v)", session, applied)
	}
	return applied, err
}

// TestAGroupedFlushOfAnEndInDoubtIsAdoptable is
// TestASessionStartedAfreshAfterAnEndRecordInDoubtCanBeAdopted with the
// End's retry written in a group with another session (flushGroup) instead
// of alone (flush): docs/invariants.md I4 "An End whose record is in doubt
// is recorded before the session starts afresh". A grouped flush used to
// write every session held here at once, at the epoch held, without the
// check flush makes: the End's retry went under the ended row, as before
// the fix for a lone flush.
func TestAGroupedFlushOfAnEndInDoubtIsAdoptable(t *testing.T) {
	keyspace := cassandratest.Keyspace(t)
	g := &createEndGate{
		hold: map[string]chan struct{}{"h": make(chan struct{})}, holding: make(chan string, 1),
		lose: map[string]bool{"s": true}, lost: make(chan string, 1),
	}
	release := g.hold["h"]
	cfg := testConfig(t, "enddoubt-grp-a", keyspace)
	cfg.FlushDelay, cfg.MaxWindow = time.Hour, 2*time.Hour // only Flush writes
	cfg.RetryMin, cfg.RetryMax = 2*time.Second, 2*time.Second
	cfg.FlushConcurrency = 1 // one worker: blocked on h, it lets t and s queue up together
	a := openNode(t, cfg, withResidencyStore(func(st residency.Store) residency.Store { g.Store = st; return g }))
	bg := func() chan error {
		ch := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			ch <- a.Flush(ctx)
		}()
		return ch
	}
	if err := a.Commit("s", put("k", "v1")); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit("t", put("k", "x1")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	if err := a.End("s"); err != nil {
		t.Fatal(err)
	}
	f1 := bg()
	select {
	case <-g.lost:
	case <-time.After(30 * time.Second):
		t.Fatal("the End's record was never tried")
	}
	// Started afresh before the End's retry (1-2 s away).
	if err := a.Commit("s", put("k", "v2")); err != nil {
		t.Fatal(err)
	}
	// Block the only worker on a new session's recording.
	if err := a.Commit("h", put("k", "y")); err != nil {
		t.Fatal(err)
	}
	f2 := bg()
	select {
	case <-g.holding:
	case <-time.After(30 * time.Second):
		t.Fatal("h's recording never began")
	}
	time.Sleep(200 * time.Millisecond) // the worker joins h's recording
	if err := a.Commit("t", put("k", "x2")); err != nil {
		t.Fatal(err)
	}
	f3 := bg()
	time.Sleep(3 * time.Second) // s's retry comes due: s and t both ready
	close(release)
	for _, f := range []chan error{f1, f2, f3} {
		if err := <-f; err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	flush(t, a)
	if st := a.Stats().Buffer; st.Groups == 0 {
		t.Fatalf("no grouped write happened (stats %+v): the test proves nothing", st)
	}
	o, found, err := a.store.ReadOwner(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	held, owned := a.res.Epoch("s")
	if !found || o.Ended || o.Node != "enddoubt-grp-a" || !owned || held != o.Epoch {
		t.Errorf("the session started afresh: its row is %+v (found %v), held at epoch %d (%v); want it owned by enddoubt-grp-a at the epoch held",
			o, found, held, owned)
	}
	a.crash()
	b := openNode(t, testConfig(t, "enddoubt-grp-b", keyspace))
	s, err := b.Adopt(context.Background(), "s", AdoptOptions{Wait: 20 * time.Second})
	if errors.Is(err, ErrNotFound) {
		t.Fatalf("the acknowledged change k=v2 is lost: a peer finds no session s after its node died")
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Items) != 1 || s.Items[0].Key != "k" || string(s.Items[0].Value) != "v2" {
		t.Fatalf("adopted %v, want k=v2", s.Items)
	}
}
