package adapter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/residency"
)

// endGate wraps the store residency talks to: EndOwner of a session in lose
// applies, then fails as a timeout would (its reply lost), once, and says so
// on lost.
type endGate struct {
	residency.Store
	mu   sync.Mutex
	lose map[string]bool
	lost chan string
}

func (g *endGate) EndOwner(ctx context.Context, session, node string, epoch uint64, ttl time.Duration) (bool, error) {
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

// A session ended, whose End record landed but whose reply was lost, and
// that the host started afresh before the End's retry: the retry writes the
// End and the new changes as one snapshot. They used to be written at the
// old epoch, under a row the lost End had marked ended, and the End was not
// recorded again (the snapshot had items): the session stayed this node's in
// memory, but no peer could adopt it, and when the node died its
// acknowledged changes were lost (the peer's Adopt answered not found). The
// End must be recorded first and the session owned afresh, so a peer adopts
// the new changes.
func TestASessionStartedAfreshAfterAnEndRecordInDoubtCanBeAdopted(t *testing.T) {
	keyspace := cassandratest.Keyspace(t)
	g := &endGate{lose: map[string]bool{"s": true}, lost: make(chan string, 1)}
	cfg := testConfig(t, "enddoubt-a", keyspace)
	cfg.FlushDelay, cfg.MaxWindow = time.Hour, 2*time.Hour // only Flush writes
	cfg.RetryMin, cfg.RetryMax = 2*time.Second, 2*time.Second
	a := openNode(t, cfg, withResidencyStore(func(st residency.Store) residency.Store { g.Store = st; return g }))
	if err := a.Commit("s", put("k", "v1")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	if err := a.End("s"); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ended <- a.Flush(ctx)
	}()
	select {
	case <-g.lost: // the End is written and its record applied, its reply lost
	case err := <-ended:
		t.Fatalf("the End was flushed (%v) without recording it", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the End's record was never tried")
	}
	// Started afresh before the End's retry (2 s away).
	if err := a.Commit("s", put("k", "v2")); err != nil {
		t.Fatal(err)
	}
	if err := <-ended; err != nil {
		t.Fatalf("flush of the End: %v", err)
	}
	flush(t, a)
	startedAfreshSurvives(t, a, keyspace, "enddoubt-b")
}

// startedAfreshSurvives fails t unless session s, ended on a and started
// afresh with k=v2, is owned by a at the epoch a holds, and, once a dies, a
// peer (node peer) adopts it with k=v2.
func startedAfreshSurvives(t *testing.T, a *Adapter, keyspace, peer string) {
	t.Helper()
	o, found, err := a.store.ReadOwner(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	held, owned := a.res.Epoch("s")
	if !found || o.Ended || o.Node != a.NodeID() || !owned || held != o.Epoch {
		t.Errorf("the session started afresh: its row is %+v (found %v), held at epoch %d (%v); want it owned by %s at the epoch held",
			o, found, held, owned, a.NodeID())
	}
	a.crash()
	b := openNode(t, testConfig(t, peer, keyspace))
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
