package residency_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/residency"
)

// A second live process with the same node ID is refused at Start, with an
// error naming the node ID, rather than sharing the lease and adopting the
// first one's sessions without a fence.
func TestSecondProcessWithOneNodeIDIsRefused(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.node("dup", c.store(false), func(cfg *residency.Config) { cfg.LeaseTTL = 3 * time.Second })
	second, err := residency.New(residency.Config{NodeID: "dup", LeaseTTL: 3 * time.Second}, c.store(false))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second) // longer than the TTL
	defer cancel()
	err = second.Start(ctx)
	var inUse *residency.NodeIDInUseError
	if !errors.As(err, &inUse) || !errors.Is(err, residency.ErrNodeIDInUse) || !strings.Contains(err.Error(), `"dup"`) {
		t.Fatalf("second Start with a live node ID: %v", err)
	}
	t.Log(err)
}

// A process restarted after a crash takes the node ID over once the old
// process's lease expires; after a graceful close (lease dropped), at once.
func TestRestartWaitsForTheOldLease(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	const ttl = 2 * time.Second
	for _, graceful := range []bool{false, true} {
		node := map[bool]string{false: "crashed", true: "closed"}[graceful]
		old, err := residency.New(residency.Config{NodeID: node, LeaseTTL: ttl}, c.store(false))
		if err != nil {
			t.Fatal(err)
		}
		if err := old.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		if err := old.Close(context.Background(), graceful); err != nil {
			t.Fatal(err)
		}
		c.node(node, c.store(false), func(cfg *residency.Config) { cfg.LeaseTTL = ttl })
		waited := time.Since(stopped)
		switch {
		case graceful && waited > time.Second:
			t.Fatalf("restart after a graceful close waited %v", waited)
		case !graceful && waited < ttl-time.Second/2: // the old lease was renewed up to LeaseRenew before the stop
			t.Fatalf("restart after a crash took the node ID after %v, before the old lease (%v) expired", waited, ttl)
		}
		t.Logf("graceful=%v: the new process started %v after the old one stopped", graceful, waited.Round(time.Millisecond))
	}
}

// A process paused past its lease is replaced by a new process with the same
// node ID, which adopts its sessions. When the paused one wakes, it must not
// recover: it stays fenced for good and says so.
func TestPausedProcessReplacedStaysFenced(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	const ttl = 2 * time.Second
	old := &counting{Store: c.store(false)}
	fenced := make(chan []string, 2)
	recovered := make(chan []string, 2)
	a := c.node("same", old, func(cfg *residency.Config) {
		cfg.LeaseTTL = ttl
		cfg.OnFenced = func(s []string) { fenced <- s }
		cfg.OnRecovered = func(s []string) { recovered <- s }
	})
	ctx := context.Background()
	if _, err := a.EnsureOwned(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	old.renewFails.Store(true) // "paused": no renewal gets through
	waitFor(t, fenced, "fence of the paused process", 10*time.Second)
	b := c.node("same", c.store(false), func(cfg *residency.Config) { cfg.LeaseTTL = ttl })
	if got, err := b.Adopt(ctx, "s", residency.AdoptOptions{}); err != nil || got.Epoch != 2 {
		t.Fatalf("the new process adopting the old one's session: %+v %v", got, err)
	}
	old.renewFails.Store(false) // the old process wakes up
	time.Sleep(2 * ttl)
	select {
	case lost := <-recovered:
		t.Fatalf("the replaced process recovered (lost %v)", lost)
	default:
	}
	if a.LeaseValid() {
		t.Fatal("the replaced process believes its lease valid")
	}
	if _, err := a.Adopt(ctx, "other", residency.AdoptOptions{}); !errors.Is(err, residency.ErrReplaced) || !errors.Is(err, residency.ErrFenced) {
		t.Fatalf("adopt on the replaced process: %v", err)
	}
	if !b.LeaseValid() {
		t.Fatal("the new process lost its lease to the old one's renewals")
	}
	if e, ok := b.Epoch("s"); !ok || e != 2 {
		t.Fatalf("the new process owns s at %d (%v)", e, ok)
	}
	// The replaced process shuts down gracefully: it must not drop the lease,
	// which is its successor's now.
	if !a.Replaced() {
		t.Fatal("the replaced process does not know it")
	}
	if err := a.Close(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, found, err := old.Store.ReadLease(ctx, "same"); err != nil || !found {
		t.Fatalf("after the replaced process closed, the successor's lease: found=%v err=%v", found, err)
	}
}
