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
