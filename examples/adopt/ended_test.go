package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// A session this node ended moments ago (the end not flushed yet) gets a
// new event: Adopt says ErrAlreadyOwned, and after Flush the session is gone
// (Peek: ErrNotFound). That is "nothing persisted": HandleEvent, which
// "handles every outcome", must serve it as a new session (as its
// ErrNotFound case does). It used to fail the event with the error.
func TestAnEventAfterAnUnflushedEndIsServedAsNew(t *testing.T) {
	cfg := testConfig(t, cassandratest.Keyspace(t), "adopt-ended")
	cfg.FlushDelay = 5 * time.Second
	ctx := context.Background()
	a := openAdapter(t, cfg)
	h := NewHost(a)
	if err := a.Commit("d1", adapter.Change{Key: "state", Value: []byte("answered")}); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.End("d1"); err != nil { // BYE: ended here, not flushed yet
		t.Fatal(err)
	}
	_, aerr := a.Adopt(ctx, "d1")
	t.Logf("Adopt after the unflushed End: %v", aerr)
	if !errors.Is(aerr, adapter.ErrAlreadyOwned) {
		t.Fatalf("Adopt did not answer ErrAlreadyOwned (%v): the test proves nothing", aerr)
	}
	r, err := h.HandleEvent(ctx, "d1")
	if err != nil {
		t.Fatalf("event for a session ended moments ago: HandleEvent error %v (result %+v), want it served as new", err, r)
	}
	if ok := h.resident("d1"); r.Action != Served || !ok {
		t.Fatalf("event for a session ended moments ago: %+v, resident %v; want it served as new", r, ok)
	}
}

// testConfig is the adapter's default configuration for node in keyspace ks
// of the test's Cassandra.
func testConfig(t *testing.T, ks, node string) adapter.Config {
	t.Helper()
	hosts, port := cassandratest.Hosts(t)
	cfg := adapter.DefaultConfig()
	cfg.Hosts, cfg.Port, cfg.Keyspace, cfg.NodeID = hosts, port, ks, node
	return cfg
}

// openAdapter opens cfg's node, closed when the test ends.
func openAdapter(t *testing.T, cfg adapter.Config) *adapter.Adapter {
	t.Helper()
	a, err := adapter.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = a.Close(context.Background()) })
	return a
}
