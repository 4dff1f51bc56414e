package residency

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// slotHog blocks the ownership creation of one session until released.
type slotHog struct {
	*memstore.Store
	session string
	entered chan struct{}
	release chan struct{}
}

func (h *slotHog) CreateOwner(ctx context.Context, s, node string, ended uint64, ttl time.Duration) (bool, store.Owner, error) {
	if s == h.session {
		close(h.entered)
		<-h.release
	}
	return h.Store.CreateOwner(ctx, s, node, ended, ttl)
}

// A creation that waited for a creation slot while the node fenced must not
// record the session: the fence discarded its changes (and reported it lost),
// and a node claims a session only while its lease is valid. Before, the
// fence count was taken after the wait, so the creation went ahead.
func TestCreationWaitingForASlotAcrossAFenceIsRefused(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	h := &slotHog{Store: st, session: "first", entered: make(chan struct{}), release: make(chan struct{})}
	m := started(t, Config{NodeID: "a", LeaseTTL: 10 * time.Minute, MaxConcurrentCreates: 1}, h)

	firstErr := make(chan error, 1)
	go func() { _, err := m.EnsureOwned(ctx, "first"); firstErr <- err }()
	<-h.entered // "first" holds the only creation slot

	type res struct {
		epoch uint64
		err   error
	}
	second := make(chan res, 1)
	go func() { e, err := m.EnsureOwned(ctx, "second"); second <- res{e, err} }()
	for deadline := time.Now().Add(2 * time.Second); m.creating.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatal("second creation never queued for a slot")
		}
		time.Sleep(time.Millisecond)
	}

	m.fence() // the lease lapsed while "second" waited for a slot
	close(h.release)

	if err := <-firstErr; !errors.Is(err, ErrFenced) {
		t.Fatalf("first creation across the fence: err %v, want ErrCreationLapsed", err)
	}
	r := <-second
	if r.err == nil {
		o, _ := st.Owner("second")
		t.Fatalf("creation that waited for a slot across a fence succeeded at epoch %d (row %+v, fenced=%v): want ErrFenced/ErrCreationLapsed", r.epoch, o, m.Fenced())
	}
	if _, ok := st.Owner("second"); ok {
		t.Fatalf("a fenced node recorded a new session's ownership")
	}
}

// fenceHog blocks the fence of one session until released.
type fenceHog struct {
	*memstore.Store
	session string
	entered chan struct{}
	release chan struct{}
}

func (h *fenceHog) Fence(ctx context.Context, s string, epoch uint64, items []store.Item) error {
	if s == h.session {
		close(h.entered)
		<-h.release
	}
	return h.Store.Fence(ctx, s, epoch, items)
}

// A session started again after an End is recorded with a claim and a
// fence; a node that fences while that fence is on its way does not take
// the session as its own (ErrCreationLapsed), as a first creation does not.
// Before, only the claim was checked against the fence: the node held a
// session whose changes the fence had discarded and reported lost.
func TestRecreationAcrossAFenceIsRefused(t *testing.T) {
	ctx := context.Background()
	h := &fenceHog{Store: memstore.New(), session: "again", entered: make(chan struct{}), release: make(chan struct{})}
	m := started(t, Config{NodeID: "a", LeaseTTL: 10 * time.Minute}, h)
	if _, err := m.EnsureOwned(ctx, "again"); err != nil {
		t.Fatal(err)
	}
	if err := m.Ended(ctx, "again"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := m.EnsureOwned(ctx, "again"); done <- err }()
	<-h.entered
	m.fence()
	close(h.release)
	if err := <-done; !errors.Is(err, ErrCreationLapsed) {
		t.Fatalf("a recreation across a fence: %v, want ErrCreationLapsed", err)
	}
	if e, ok := m.Epoch("again"); ok {
		t.Fatalf("the fenced node holds the recreated session at epoch %d", e)
	}
}

// A creation over a void record (an earlier incarnation's record of a
// session it never wrote) claims it and fences it; a node that fences
// while that fence is on its way does not take the session as its own.
// Before, it did: the fence had discarded the session's changes.
func TestCreationOverAVoidRecordAcrossAFenceIsRefused(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	cfg := Config{NodeID: "x", LeaseTTL: time.Second, MaxClockSkew: time.Millisecond}
	x1 := started(t, cfg, st)
	if _, err := x1.EnsureOwned(ctx, "v"); err != nil { // recorded, never written
		t.Fatal(err)
	}
	if err := x1.Close(ctx, true); err != nil { // gone, its lease with it
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // past the skew
	started(t, cfg, st)               // x again: a live lease that began after the record
	h := &fenceHog{Store: st, session: "v", entered: make(chan struct{}), release: make(chan struct{})}
	y := started(t, Config{NodeID: "y", LeaseTTL: 10 * time.Minute, MaxClockSkew: time.Millisecond}, h)
	done := make(chan error, 1)
	go func() { _, err := y.EnsureOwned(ctx, "v"); done <- err }()
	select {
	case <-h.entered:
	case err := <-done:
		t.Fatalf("the creation over x's void record ended before its fence: %v", err)
	}
	y.fence()
	close(h.release)
	if err := <-done; !errors.Is(err, ErrCreationLapsed) {
		t.Fatalf("a creation over a void record across a fence: %v, want ErrCreationLapsed", err)
	}
	if e, ok := y.Epoch("v"); ok {
		t.Fatalf("the fenced node holds the session at epoch %d", e)
	}
}

// started returns a Manager for cfg over st, started, closed when the test
// ends (its node ID's lease is released with it).
func started(t *testing.T, cfg Config, st Store) *Manager {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background(), false) })
	return m
}
