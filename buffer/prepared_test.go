package buffer

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// stuckCalls runs one worker over the sessions commits names (each a change of
// its size in bytes), through a GroupFlush and a FlushFunc that record the
// sessions of each call; a call carrying the session stuck blocks until the
// test ends. It checks that every other session landed while that call is
// stuck, and that the calls were want, in order.
func stuckCalls(t *testing.T, cfg Config, stuck string, commits []string, sizes map[string]int, want [][]string) {
	t.Helper()
	var (
		mu      sync.Mutex
		calls   [][]string
		release = make(chan struct{})
	)
	record := func(snaps []*Snapshot) {
		var ids []string
		for _, s := range snaps {
			ids = append(ids, s.Session)
		}
		mu.Lock()
		calls = append(calls, ids)
		mu.Unlock()
		if slices.Contains(ids, stuck) {
			<-release
		}
	}
	cfg.Delay, cfg.Concurrency, cfg.GroupMax = 20*time.Millisecond, 1, 8
	cfg.GroupFlush = func(ctx context.Context, snaps []*Snapshot, errs []error) { record(snaps) }
	b, err := New(cfg, func(ctx context.Context, s *Snapshot) error { record([]*Snapshot{s}); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(release)
		b.Close(context.Background())
	}()
	for _, s := range commits {
		if err := b.Commit(s, Change{Key: "k", Value: make([]byte, max(sizes[s], 1))}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.Stats().PendingSessions != 1 {
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("pending sessions %d while %s's call is stuck, want 1 (the others landed); calls %v",
				b.Stats().PendingSessions, stuck, calls)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.EqualFunc(calls, want, slices.Equal) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
}

// A GroupFlush call lands all its snapshots when it returns. A session that must
// be prepared before its write (Config.Prepared false: a new session's ownership
// record, one lightweight transaction that took up to 800 ms in a saturated run)
// goes in a group of its own, after the others have landed: grouped with them, it
// held them in flight for as long as it took, and the changes committed to them
// meanwhile waited for it (writes past the window bound). Here "new" is stuck in
// its preparation while "old1" and "old2", taken by the same worker, have landed.
func TestAPreparationDoesNotHoldTheSessionsGroupedWithIt(t *testing.T) {
	stuckCalls(t, Config{Prepared: func(session string) bool { return session != "new" }},
		"new", []string{"old1", "new", "old2"}, nil, [][]string{{"old1", "old2"}, {"new"}})
}

// A snapshot is in flight from the moment it is taken. A worker that took a group of
// small sessions and a large one (over GroupBytes, written alone) sends the group
// first: written after the large one, the group stayed in flight for as long as
// that write took, and so did the changes committed to its sessions meanwhile.
func TestALargeSessionsWriteDoesNotHoldTheGroupTakenWithIt(t *testing.T) {
	stuckCalls(t, Config{GroupBytes: 512}, "big", []string{"s1", "big", "s2"},
		map[string]int{"s1": 10, "big": 600, "s2": 10}, [][]string{{"s1", "s2"}, {"big"}})
}

// OnNew is called once a Commit has applied the changes of a session the
// buffer held nothing of, and not for a session already dirty, for a refused
// Commit, or for End.
func TestOnNewNamesTheSessionsACommitMadeNew(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex
		got []string
	)
	h := newHarness(t, Config{Delay: time.Second, CheckSession: func(s string) error {
		if s == "refused" {
			return ErrOverloaded
		}
		return nil
	}, OnNew: func(s string) {
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	}})
	h.commit("s1", Change{Key: "k", Value: []byte("1")})
	h.commit("s1", Change{Key: "k2", Value: []byte("2")}) // dirty already
	if err := h.b.Commit("refused", Change{Key: "k", Value: []byte("1")}); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("commit CheckSession refused: %v", err)
	}
	if err := h.b.End("s2"); err != nil {
		t.Fatal(err)
	}
	h.commit("s3", Change{Key: "k", Value: []byte("1")})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, []string{"s1", "s3"}) {
		t.Fatalf("OnNew called for %v, want [s1 s3]", got)
	}
}
