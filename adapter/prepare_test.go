package adapter

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// A new session is recorded as this node's as soon as its first changes are
// accepted, while they wait for their flush delay, not by their first flush
// a delay later: its first write then lands a recording sooner (the
// recording used to come after the delay, in a saturated run long enough to
// put the write past the window bound). With a 2 s delay the session must be
// owned well before anything of it is written.
func TestANewSessionIsRecordedWhileItsChangesWait(t *testing.T) {
	cfg := testConfig(t, "prep-a", cassandratest.Keyspace(t))
	cfg.FlushDelay = 2 * time.Second
	a := openNode(t, cfg)
	if err := a.Commit("s1", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for {
		if _, ok := a.res.Epoch("s1"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new session was not recorded within 1 s of its first commit (its flush is due after 2 s)")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := a.Stats(); st.Buffer.Flushes != 0 || st.Buffer.PendingSessions != 1 {
		t.Fatalf("recorded after its changes were written (flushes %d, pending %d): the test proves nothing",
			st.Buffer.Flushes, st.Buffer.PendingSessions)
	}
	flush(t, a)
	items, err := a.store.ReadState(context.Background(), "s1")
	if err != nil || len(items) != 1 {
		t.Fatalf("state after the flush: %v, %v", items, err)
	}
}

// recordGate wraps the store residency talks to. CreateOwner of a session in
// hold waits, once it has begun (told on holding), until that session's
// channel is closed; of a session in lose it applies, then fails as a
// timeout would (its reply lost, and the read that settles it failed too).
type recordGate struct {
	residency.Store
	mu      sync.Mutex
	hold    map[string]chan struct{}
	lose    map[string]bool
	holding chan string
}

func (g *recordGate) CreateOwner(ctx context.Context, session, node string, ended uint64, ttl time.Duration) (bool, store.Owner, error) {
	g.mu.Lock()
	release, held := g.hold[session]
	delete(g.hold, session)
	lose := g.lose[session]
	delete(g.lose, session)
	g.mu.Unlock()
	if held {
		g.holding <- session
		<-release
	}
	created, cur, err := g.Store.CreateOwner(ctx, session, node, ended, ttl)
	if lose && err == nil {
		return false, store.Owner{}, fmt.Errorf("create owner of %s: reply lost (applied: %v)", session, created)
	}
	return created, cur, err
}

// withResidencyStore has residency talk to what wrap makes of the store.
func withResidencyStore(wrap func(residency.Store) residency.Store) Option {
	return func(o *options) { o.residencyStore = wrap }
}

func (g *recordGate) option() Option {
	return withResidencyStore(func(st residency.Store) residency.Store { g.Store = st; return g })
}

// endedRecord fails the test unless session's ownership row is ended (or
// gone) and a does not hold the session.
func endedRecord(t *testing.T, a *Adapter, session, why string) {
	t.Helper()
	o, found, err := a.store.ReadOwner(context.Background(), session)
	if err != nil {
		t.Fatal(err)
	}
	if found && !o.Ended {
		t.Errorf("%s, %s: its ownership row names %q at epoch %d, not ended", session, why, o.Node, o.Epoch)
	}
	if _, owned := a.res.Epoch(session); owned {
		t.Errorf("%s, %s: still owned", session, why)
	}
}

// A session started and ended before its first flush, whose recording
// (started with its first changes) is still under way when the flush comes,
// must not be skipped as never persisted: the recording lands all the same,
// and the session would stay recorded as this node's, never ended (a session
// started afresh under its ID on another node would then find it owned).
// The flush joins the recording, writes the End and marks the row ended.
// The recording is held until the flush has had its look (without the join,
// the flush returned at once, and the row landed after it, never ended).
func TestASessionEndedWhileItIsRecordedEndsItsRecord(t *testing.T) {
	g := &recordGate{hold: map[string]chan struct{}{"e": make(chan struct{})}, holding: make(chan string, 1)}
	release := g.hold["e"]
	cfg := testConfig(t, "prep-b", cassandratest.Keyspace(t))
	cfg.FlushDelay, cfg.MaxWindow = time.Hour, 2*time.Hour // only Flush writes
	a := openNode(t, cfg, g.option())
	if err := a.Commit("e", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.holding: // the recording is on its way, held
	case <-time.After(30 * time.Second):
		t.Fatal("the commit of a new session started no recording")
	}
	if err := a.End("e"); err != nil {
		t.Fatal(err)
	}
	flushed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		flushed <- a.Flush(ctx)
	}()
	select {
	case err := <-flushed:
		close(release)
		t.Fatalf("Flush returned (%v) while the session's recording was held: it did not join it", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	endedRecord(t, a, "e", "ended while its recording was on its way")
}

// A session started and ended before its first flush, whose recording
// failed without saying whether it landed (it did: only its reply was
// lost), is recorded before its End is written, and its row is marked
// ended: skipped as never persisted, it left the row naming this node for
// good, and the ended session would be found, and adopted with no state, as
// one that exists.
func TestAnEndAfterARecordOfUnknownOutcomeIsRecorded(t *testing.T) {
	g := &recordGate{lose: map[string]bool{"u": true}}
	cfg := testConfig(t, "prep-c", cassandratest.Keyspace(t))
	cfg.FlushDelay, cfg.MaxWindow = time.Hour, 2*time.Hour // only Flush writes
	a := openNode(t, cfg, g.option())
	if err := a.Commit("u", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for a.res.Preparing("u") {
		if time.Now().After(deadline) {
			t.Fatal("the recording did not end")
		}
		time.Sleep(time.Millisecond)
	}
	o, found, err := a.store.ReadOwner(context.Background(), "u")
	if err != nil || !found || o.Node != "prep-c" || o.Ended {
		t.Fatalf("the recording with its reply lost left %+v, found %v, %v: the test wants it landed", o, found, err)
	}
	if _, owned := a.res.Epoch("u"); owned {
		t.Fatal("held after a recording whose reply was lost: the test proves nothing")
	}
	if err := a.End("u"); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	endedRecord(t, a, "u", "ended after a recording whose reply was lost")
}
