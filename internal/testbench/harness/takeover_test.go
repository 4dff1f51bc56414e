package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/store"
)

func TestStressFanOut(t *testing.T) {
	const n = 1000
	var (
		mu       sync.Mutex
		seen     = map[int]int{}
		inFlight atomic.Int32
		most     atomic.Int32
	)
	err := fanOut(n, 8, func(i int) error {
		now := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
		}
		mu.Lock()
		seen[i]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if seen[i] != 1 {
			t.Fatalf("fn(%d) called %d times", i, seen[i])
		}
	}
	if len(seen) != n {
		t.Fatalf("%d indices called, want %d", len(seen), n)
	}
	if m := most.Load(); m > 8 {
		t.Fatalf("%d calls in flight, want at most 8", m)
	}

	// The first error is returned, and after it no further call starts.
	boom := errors.New("boom")
	for _, workers := range []int{1, 4} {
		var calls atomic.Int32
		err = fanOut(n, workers, func(i int) error {
			calls.Add(1)
			if i == 10 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("%d workers: error %v, want %v", workers, err, boom)
		}
		if c := calls.Load(); workers == 1 && c != 11 {
			t.Fatalf("one worker: %d calls, want 11 (none after the error)", c)
		}
	}
	if err := fanOut(0, 4, func(int) error { t.Fatal("called with n = 0"); return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestTakeoverRoundsEachTakeOverTheirOwnDeadNode runs the takeover
// benchmark small, in two rounds, against Cassandra: each round takes over
// every session of a dead node of its own and the anchor claims as many of
// its own, and the figures are the rounds' sums.
func TestTakeoverRoundsEachTakeOverTheirOwnDeadNode(t *testing.T) {
	hosts, port := cassandratest.Hosts(t)
	ctx := context.Background()
	e := &Env{Hosts: hosts, Port: port, Keyspace: fmt.Sprintf("harness_tk_%d", time.Now().UnixNano()), Log: io.Discard}
	if err := e.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.Teardown(context.WithoutCancel(ctx))

	const sessions, rounds = 30, 2
	res, err := e.Takeover(ctx, sessions, 4, rounds, 1e6)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rounds) != rounds {
		t.Fatalf("%d rounds reported, want %d", len(res.Rounds), rounds)
	}
	var ours, raw time.Duration
	for _, r := range res.Rounds {
		if r.Ours <= 0 || r.Raw <= 0 {
			t.Fatalf("round %+v: a side took no time", r)
		}
		ours, raw = ours+r.Ours, raw+r.Raw
	}
	if res.Ours != ours || res.Raw != raw {
		t.Errorf("totals %s and %s, want the rounds' sums %s and %s", res.Ours, res.Raw, ours, raw)
	}
	if want := float64(rounds*sessions) / ours.Seconds(); res.OursPerS != want {
		t.Errorf("OursPerS = %.1f, want %.1f", res.OursPerS, want)
	}
	if want := float64(rounds*sessions) / raw.Seconds(); res.RawPerS != want {
		t.Errorf("RawPerS = %.1f, want %.1f", res.RawPerS, want)
	}

	st, err := store.Open(ctx, store.Options{Hosts: hosts, Port: port, Keyspace: e.Keyspace, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for n := range rounds {
		for i := range sessions {
			for id, owner := range map[string]string{
				fmt.Sprintf("takeover-%d-%d", n, i):     "bench-taker",
				fmt.Sprintf("takeover-raw-%d-%d", n, i): "bench-claimer",
			} {
				o, found, err := st.ReadOwner(ctx, id)
				if err != nil || !found || o.Node != owner || o.Epoch != 2 {
					t.Fatalf("%s: owner %+v found=%v err=%v, want %s at epoch 2", id, o, found, err, owner)
				}
			}
		}
	}
}
