package harness

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
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
