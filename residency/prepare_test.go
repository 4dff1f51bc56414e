package residency

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// A new session's recording starts when Prepare is called (when the host
// accepts its first changes), not when its first flush asks EnsureOwned a
// flush delay later; the flush's EnsureOwned joins it rather than recording
// the session a second time, and gets its outcome. Prepare does nothing for
// a session this node owns or one whose recording is under way.
func TestPrepareRecordsANewSessionAheadOfItsFlush(t *testing.T) {
	g := &createGate{Store: memstore.New(), release: make(chan struct{})}
	m := started(t, Config{NodeID: "n1", LeaseTTL: 5 * time.Second}, g)
	t.Cleanup(func() { openGate(g) }) // before Close, which waits for the recordings
	m.Prepare("held-a")
	deadline := time.Now().Add(5 * time.Second)
	for g.holding() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("Prepare did not start recording the session")
		}
		time.Sleep(time.Millisecond)
	}
	if !m.Preparing("held-a") {
		t.Fatal("Preparing is false while the recording is under way")
	}
	m.Prepare("held-a") // under way: nothing more
	joined := ensuring(m, "held-a")
	select {
	case r := <-joined:
		t.Fatalf("EnsureOwned returned %v before the recording it joins ended", r)
	case <-time.After(50 * time.Millisecond):
	}
	openGate(g)
	r := <-joined
	if r.err != nil || r.epoch != 1 {
		t.Fatalf("EnsureOwned joining the recording: epoch %d, %v; want 1, nil", r.epoch, r.err)
	}
	if n := g.holding(); n != 1 {
		t.Fatalf("the session was recorded %d times, want once", n)
	}
	if e, ok := m.Epoch("held-a"); !ok || e != 1 {
		t.Fatalf("Epoch after the recording: %d, %v", e, ok)
	}
	for m.Preparing("held-a") {
		if time.Now().After(deadline) {
			t.Fatal("Preparing stayed true after the recording ended")
		}
		time.Sleep(time.Millisecond)
	}
	m.Prepare("held-a") // owned: nothing
	time.Sleep(20 * time.Millisecond)
	if n := g.holding(); n != 1 {
		t.Fatalf("Prepare of an owned session recorded it again (%d recordings)", n)
	}
}

// Prepare after Close starts no recording: nothing would wait for it.
func TestPrepareAfterCloseStartsNothing(t *testing.T) {
	g := &createGate{Store: memstore.New(), release: make(chan struct{})}
	m := started(t, Config{NodeID: "n1", LeaseTTL: 5 * time.Second}, g)
	t.Cleanup(func() { openGate(g) }) // before Close, which waits for the recordings
	if err := m.Close(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	m.Prepare("held-b")
	time.Sleep(20 * time.Millisecond)
	if n := g.holding(); n != 0 || m.Preparing("held-b") {
		t.Fatalf("Prepare after Close: %d recordings, preparing %v; want none", n, m.Preparing("held-b"))
	}
}

// Every recording of a session goes through one entry: a Prepare that comes
// while the flush's own EnsureOwned is recording the session joins it rather
// than starting a second (the second found the first's record naming this
// node, claimed and fenced the session, and the fence could hide the first
// write, acknowledged and then lost).
func TestARecordingUnderWayIsNeverStartedTwice(t *testing.T) {
	g := &createGate{Store: memstore.New(), release: make(chan struct{})}
	m := started(t, Config{NodeID: "n1", LeaseTTL: 5 * time.Second}, g)
	t.Cleanup(func() { openGate(g) }) // before Close, which waits for the recordings
	done := ensuring(m, "held-x")
	waitHolding(t, g, 1)
	m.Prepare("held-x")
	time.Sleep(30 * time.Millisecond)
	if n := g.holding(); n != 1 {
		t.Fatalf("%d recordings of one session under way at once, want 1", n)
	}
	openGate(g)
	if r := <-done; r.err != nil || r.epoch != 1 {
		t.Fatalf("EnsureOwned: epoch %d, %v; want 1, nil", r.epoch, r.err)
	}
}

// A fence ends the joining of a recording under way: that recording ends in
// ErrCreationLapsed (the fence discarded the session's changes), and a
// session started again after the recovery records itself afresh instead of
// inheriting that error (which dropped the changes acknowledged after the
// recovery).
func TestARecordingUnderWayAtAFenceIsNotJoinedAfterIt(t *testing.T) {
	g := &createGate{Store: memstore.New(), release: make(chan struct{})}
	m := started(t, Config{NodeID: "n1", LeaseTTL: 5 * time.Second}, g)
	t.Cleanup(func() { openGate(g) }) // before Close, which waits for the recordings
	m.Prepare("held-y")
	waitHolding(t, g, 1)
	m.fence()
	m.recover()
	if m.Fenced() {
		t.Fatal("still fenced after recover")
	}
	done := ensuring(m, "held-y")
	waitHolding(t, g, 2)
	openGate(g)
	if err := (<-done).err; err != nil {
		t.Fatalf("EnsureOwned after the recovery: %v, want the session recorded afresh", err)
	}
	if _, ok := m.Epoch("held-y"); !ok {
		t.Fatal("not owned after its recording")
	}
}

// A recording Prepare started counts as queued for creation as soon as
// Prepare returns (AdmitNew judges a burst by that queue), not once its
// goroutine runs.
func TestAPreparedRecordingIsQueuedAtOnce(t *testing.T) {
	g := &createGate{Store: memstore.New(), release: make(chan struct{})}
	m := started(t, Config{NodeID: "n1", LeaseTTL: 5 * time.Second}, g)
	t.Cleanup(func() { openGate(g) }) // before Close, which waits for the recordings
	for i := range 8 {
		m.Prepare("held-" + string(rune('a'+i)))
	}
	if n := m.creating.Load(); n != 8 {
		t.Fatalf("creating %d just after 8 Prepares, want 8", n)
	}
	openGate(g)
}

// StopPreparing cancels the recordings under way and waits for them: none
// lands after it returns (a host forgets and releases its sessions next).
func TestStopPreparingCancelsAndWaits(t *testing.T) {
	g := &ctxGate{Store: memstore.New()}
	m := started(t, Config{NodeID: "n1", LeaseTTL: 5 * time.Second}, g)
	m.Prepare("s1")
	for g.entered.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	stopped := make(chan struct{})
	go func() { m.StopPreparing(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("StopPreparing did not return")
	}
	if _, ok := m.Epoch("s1"); ok || m.Preparing("s1") {
		t.Fatal("a recording cancelled by StopPreparing left the session owned or under way")
	}
	m.Prepare("s2")
	time.Sleep(20 * time.Millisecond)
	if n := g.entered.Load(); n != 1 {
		t.Fatalf("Prepare after StopPreparing started a recording (%d in all)", n)
	}
}

// ctxGate holds every creation until its context ends.
type ctxGate struct {
	*memstore.Store
	entered atomic.Int32
}

func (g *ctxGate) CreateOwner(ctx context.Context, s, node string, ended uint64, ttl time.Duration) (bool, store.Owner, error) {
	g.entered.Add(1)
	<-ctx.Done()
	return false, store.Owner{}, ctx.Err()
}

func waitHolding(t *testing.T, g *createGate, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for g.holding() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d recordings reached the store within 5 s, want %d", g.holding(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// openGate releases the creations g holds, once.
func openGate(g *createGate) {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.release:
	default:
		close(g.release)
	}
}

// ensured is the outcome of an EnsureOwned.
type ensured struct {
	epoch uint64
	err   error
}

// ensuring runs EnsureOwned of session on m in the background.
func ensuring(m *Manager, session string) <-chan ensured {
	done := make(chan ensured, 1)
	go func() {
		e, err := m.EnsureOwned(context.Background(), session)
		done <- ensured{e, err}
	}()
	return done
}

// A recording whose reply was lost (a timeout after Cassandra applied it)
// leaves a row naming this node while this node does not hold the session.
// Unsettled reports it until a recording settles the session, so that a
// flush of the session's End records the session (EnsureOwned adopts the
// row) instead of skipping a session it finds unowned and leaving the row
// naming this node for good: the ended session would be found, and adopted,
// as one that exists. Both ways of recording are covered: the flush's own
// EnsureOwned and Prepare.
func TestARecordWhoseReplyWasLostIsUnsettled(t *testing.T) {
	st := memstore.New()
	var lost sync.Map // sessions whose first recording loses its reply
	st.Faults = func(op, session string) memstore.Fault {
		if _, first := lost.LoadAndDelete(session); first && op == "create_owner" {
			return memstore.LoseReply
		}
		return memstore.OK
	}
	m := started(t, Config{NodeID: "n1", LeaseTTL: 5 * time.Second}, st)
	ctx := context.Background()
	for _, via := range []string{"ensure", "prepare"} {
		s := "lost-" + via
		lost.Store(s, true)
		if via == "ensure" {
			if _, err := m.EnsureOwned(ctx, s); err == nil {
				t.Fatalf("%s: EnsureOwned with its reply lost succeeded", s)
			}
		} else {
			m.Prepare(s)
			deadline := time.Now().Add(5 * time.Second)
			for m.Preparing(s) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: the recording did not end", s)
				}
				time.Sleep(time.Millisecond)
			}
		}
		if o, found, _ := st.ReadOwner(ctx, s); !found || o.Node != "n1" {
			t.Fatalf("%s: the lost reply's row: %+v, found %v; want it naming n1", s, o, found)
		}
		if _, owned := m.Epoch(s); owned {
			t.Fatalf("%s: held after a recording whose reply was lost", s)
		}
		if !m.Unsettled(s) {
			t.Fatalf("%s: a row names this node, which does not hold the session, and Unsettled is false: an End flushed now would leave it so", s)
		}
		e, err := m.EnsureOwned(ctx, s)
		if err != nil || e < 1 {
			t.Fatalf("%s: EnsureOwned after the lost reply: epoch %d, %v", s, e, err)
		}
		if m.Unsettled(s) {
			t.Fatalf("%s: Unsettled after a recording settled the session", s)
		}
	}
	// A recording refused because another node, live, holds the session
	// settles it too: there is nothing of this node's to end.
	if err := st.RenewLease(ctx, "n2", time.Hour, 0, time.Now(), ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateOwner(ctx, "taken", "n2", 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	lost.Store("taken", true)
	if _, err := m.EnsureOwned(ctx, "taken"); err == nil {
		t.Fatal("EnsureOwned of another node's session with its reply lost succeeded")
	}
	if !m.Unsettled("taken") {
		t.Fatal("Unsettled is false after a recording whose reply was lost")
	}
	var oe *OwnedElsewhereError
	if _, err := m.EnsureOwned(ctx, "taken"); !errors.As(err, &oe) {
		t.Fatalf("EnsureOwned of n2's session: %v, want *OwnedElsewhereError", err)
	}
	if m.Unsettled("taken") {
		t.Fatal("Unsettled after the session was found to be another node's")
	}
}
