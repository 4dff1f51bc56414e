package buffer

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// A GroupFlush call lands all its snapshots when it returns. A session that must
// be prepared before its write (Config.Prepared false: a new session's ownership
// record, one lightweight transaction that took up to 800 ms in a saturated run)
// goes in a group of its own, after the others have landed: grouped with them, it
// held them in flight for as long as it took, and the changes committed to them
// meanwhile waited for it (writes past the window bound). Here "new" is stuck in
// its preparation while "old1" and "old2", taken by the same worker, have landed.
func TestAPreparationDoesNotHoldTheSessionsGroupedWithIt(t *testing.T) {
	var (
		mu      sync.Mutex
		groups  [][]string
		release = make(chan struct{})
	)
	group := func(ctx context.Context, snaps []*Snapshot, errs []error) {
		var ids []string
		for _, s := range snaps {
			ids = append(ids, s.Session)
		}
		mu.Lock()
		groups = append(groups, ids)
		mu.Unlock()
		if slices.Contains(ids, "new") {
			<-release
		}
	}
	b, err := New(Config{Delay: 20 * time.Millisecond, Concurrency: 1, GroupFlush: group, GroupMax: 8,
		Prepared: func(session string) bool { return session != "new" }},
		func(ctx context.Context, s *Snapshot) error {
			group(ctx, []*Snapshot{s}, []error{nil})
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(release)
		b.Close(context.Background())
	}()
	for _, s := range []string{"old1", "new", "old2"} {
		if err := b.Commit(s, Change{Key: "k", Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.Stats().PendingSessions != 1 {
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("pending sessions %d while new's preparation is stuck, want 1 (old1 and old2 landed); calls %v",
				b.Stats().PendingSessions, groups)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(groups) != 2 || !slices.Equal(groups[0], []string{"old1", "old2"}) || !slices.Equal(groups[1], []string{"new"}) {
		t.Fatalf("calls %v, want [old1 old2] then [new]", groups)
	}
}

// A snapshot is in flight from the moment it is taken. A worker that took a group of
// small sessions and a large one (over GroupBytes, written alone) sends the group
// first: written after the large one, the group stayed in flight for as long as
// that write took, and so did the changes committed to its sessions meanwhile.
func TestALargeSessionsWriteDoesNotHoldTheGroupTakenWithIt(t *testing.T) {
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
	}
	b, err := New(Config{Delay: 20 * time.Millisecond, Concurrency: 1, GroupMax: 8, GroupBytes: 512,
		GroupFlush: func(ctx context.Context, snaps []*Snapshot, errs []error) { record(snaps) }},
		func(ctx context.Context, s *Snapshot) error {
			record([]*Snapshot{s})
			if s.Session == "big" {
				<-release
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(release)
		b.Close(context.Background())
	}()
	for _, c := range []struct {
		s string
		n int
	}{{"s1", 10}, {"big", 600}, {"s2", 10}} {
		if err := b.Commit(c.s, Change{Key: "k", Value: make([]byte, c.n)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.Stats().PendingSessions != 1 {
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("pending sessions %d while big's write is stuck, want 1 (s1 and s2 landed); calls %v",
				b.Stats().PendingSessions, calls)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 || !slices.Equal(calls[0], []string{"s1", "s2"}) || !slices.Equal(calls[1], []string{"big"}) {
		t.Fatalf("calls %v, want [s1 s2] then [big]", calls)
	}
}
