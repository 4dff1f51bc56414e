package adapter

import (
	"context"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
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

// A session started and ended before its first flush, whose recording
// (started with its first changes) is still under way when the flush comes,
// must not be skipped as never persisted: the recording lands all the same,
// and the session would stay recorded as this node's, never ended (a session
// started afresh under its ID on another node would then find it owned).
// The flush joins the recording, writes the End and marks the row ended.
func TestASessionEndedWhileItIsRecordedEndsItsRecord(t *testing.T) {
	cfg := testConfig(t, "prep-b", cassandratest.Keyspace(t))
	cfg.FlushDelay, cfg.MaxWindow = time.Hour, 2*time.Hour // only Flush writes
	a := openNode(t, cfg)
	ctx := context.Background()
	for i := range 20 { // the recording is usually still on its way when Flush asks
		s := "e" + string(rune('a'+i))
		if err := a.Commit(s, put("k", "v")); err != nil {
			t.Fatal(err)
		}
		if err := a.End(s); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, a)
	for i := range 20 {
		s := "e" + string(rune('a'+i))
		o, found, err := a.store.ReadOwner(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if found && !o.Ended {
			t.Errorf("%s, ended before its first flush: its ownership row names %q at epoch %d, not ended", s, o.Node, o.Epoch)
		}
		if _, owned := a.res.Epoch(s); owned {
			t.Errorf("%s, ended before its first flush: still owned", s)
		}
	}
}
