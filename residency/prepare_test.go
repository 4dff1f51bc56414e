package residency

import (
	"context"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
)

// A new session's recording starts when Prepare is called (when the host
// accepts its first changes), not when its first flush asks EnsureOwned a
// flush delay later; the flush's EnsureOwned joins it rather than recording
// the session a second time, and gets its outcome. Prepare does nothing for
// a session this node owns or one whose recording is under way.
func TestPrepareRecordsANewSessionAheadOfItsFlush(t *testing.T) {
	g := &createGate{Store: memstore.New(), release: make(chan struct{})}
	m := started(t, Config{NodeID: "n1", LeaseTTL: 5 * time.Second}, g)
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
	type result struct {
		epoch uint64
		err   error
	}
	joined := make(chan result, 1)
	go func() {
		e, err := m.EnsureOwned(context.Background(), "held-a")
		joined <- result{e, err}
	}()
	select {
	case r := <-joined:
		t.Fatalf("EnsureOwned returned %v before the recording it joins ended", r)
	case <-time.After(50 * time.Millisecond):
	}
	close(g.release)
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
	if err := m.Close(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	m.Prepare("held-b")
	time.Sleep(20 * time.Millisecond)
	if n := g.holding(); n != 0 || m.Preparing("held-b") {
		t.Fatalf("Prepare after Close: %d recordings, preparing %v; want none", n, m.Preparing("held-b"))
	}
}
