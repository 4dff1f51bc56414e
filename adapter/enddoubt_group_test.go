package adapter

import (
	"context"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/residency"
)

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
	// h's recording is held (recordGate); s's End record loses its reply
	// (endGate).
	rg := &recordGate{hold: map[string]chan struct{}{"h": make(chan struct{})}, holding: make(chan string, 1)}
	g := &endGate{lose: map[string]bool{"s": true}, lost: make(chan string, 1)}
	release := rg.hold["h"]
	cfg := testConfig(t, "enddoubt-grp-a", keyspace)
	cfg.FlushDelay, cfg.MaxWindow = time.Hour, 2*time.Hour // only Flush writes
	cfg.RetryMin, cfg.RetryMax = 2*time.Second, 2*time.Second
	cfg.FlushConcurrency = 1 // one worker: blocked on h, it lets t and s queue up together
	a := openNode(t, cfg, withResidencyStore(func(st residency.Store) residency.Store { rg.Store = st; g.Store = rg; return g }))
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
	case <-rg.holding:
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
	startedAfreshSurvives(t, a, keyspace, "enddoubt-grp-b")
}
