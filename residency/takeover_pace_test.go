package residency

import (
	"context"
	"testing"
	"time"
)

// The pacer starts adoptions no faster than its rate, and a late start does
// not earn a burst: the one after it waits its interval again.
func TestPacerKeepsTheRateWithoutBursts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := pacer{every: 20 * time.Millisecond}
	began := time.Now()
	for range 6 {
		if err := p.wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(began); d < 100*time.Millisecond {
		t.Fatalf("6 starts at one per 20 ms took %v, want at least 100 ms", d)
	}
	time.Sleep(100 * time.Millisecond) // a stall: five intervals missed
	began = time.Now()
	for range 3 {
		if err := p.wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(began); d < 40*time.Millisecond {
		t.Fatalf("3 starts after a stall took %v, want at least 40 ms (no burst)", d)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.wait(cctx); err != context.Canceled {
		t.Fatalf("wait with its context done: %v", err)
	}
}
