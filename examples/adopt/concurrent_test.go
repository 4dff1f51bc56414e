package main

import (
	"context"
	"sync"
	"testing"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// HandleEvent is the code hosts copy, and a host serves events concurrently:
// two events for one session it does not hold arrive at once (a balancer
// redirecting a dead peer's traffic does just that). Both must be served
// with the adopted state, and the host's resident map must not be written
// by both at once. It was a plain map: the race detector (make test runs
// with -race) reported concurrent writes.
func TestConcurrentEventsForOneSessionAreServed(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	ctx := context.Background()
	peer, err := adapter.Open(ctx, testConfig(t, ks, "adopt-concurrent-peer"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "c" + string(rune('a'+i))
		if err := peer.Commit(ids[i], adapter.Change{Key: "state", Value: []byte("ringing")}); err != nil {
			t.Fatal(err)
		}
	}
	if rep, err := peer.Close(ctx); err != nil || rep.Released != n { // released: adopted at once
		t.Fatalf("peer close: released %d, %v", rep.Released, err)
	}
	a := openAdapter(t, testConfig(t, ks, "adopt-concurrent"))
	h := NewHost(a)
	var wg sync.WaitGroup
	results := make([]Result, 2*n)
	errs := make([]error, 2*n)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = h.HandleEvent(ctx, ids[i%n])
		}()
	}
	wg.Wait()
	for i, r := range results {
		if errs[i] != nil || r.Action != Served {
			t.Errorf("event %d for %s: %+v, %v; want served", i, ids[i%n], r, errs[i])
		}
	}
	for _, id := range ids {
		if got := string(h.State(id)["state"]); got != "ringing" {
			t.Errorf("%s resident with state %q, want the adopted ringing", id, got)
		}
	}
}
