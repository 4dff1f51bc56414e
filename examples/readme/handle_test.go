package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

func openNode(t *testing.T, ks, id string, hooks adapter.Hooks) *adapter.Adapter {
	t.Helper()
	hosts, port := cassandratest.Hosts(t)
	cfg := adapter.DefaultConfig()
	cfg.Hosts, cfg.Port, cfg.Keyspace, cfg.NodeID = hosts, port, ks, id
	cfg.FlushDelay = 20 * time.Millisecond
	cfg.LeaseTTL = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := adapter.Open(ctx, cfg, adapter.WithHooks(hooks))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = a.Close(context.Background()) })
	return a
}

// Two events for one session this node does not hold arrive at once (an
// HTTP server serves them in parallel). Both are acknowledged (200), so the
// session must hold both changes afterwards, in memory as in Cassandra.
func TestConcurrentAdoptingEventsKeepBothChanges(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	ctx := context.Background()
	const sessions = 20

	// A first node writes the sessions and releases them (graceful close).
	first := openNode(t, ks, "readme-first", adapter.Hooks{})
	for i := range sessions {
		if err := first.Commit(fmt.Sprintf("s%d", i), adapter.Change{Key: "k0", Value: []byte("v0")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}

	db := &memDB{sessions: map[string]map[string][]byte{}}
	a := openNode(t, ks, "readme-second", adapter.Hooks{})
	lost := 0
	for i := range sessions {
		id := fmt.Sprintf("s%d", i)
		var wg sync.WaitGroup
		codes := make([]int, 2)
		bodies := make([]string, 2)
		for j := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[j], bodies[j] = handle(ctx, a, db, id, fmt.Sprintf("k%d", j+1), "v", false)
			}()
		}
		wg.Wait()
		if codes[0] != http.StatusOK || codes[1] != http.StatusOK {
			t.Logf("%s: %d %q / %d %q", id, codes[0], bodies[0], codes[1], bodies[1])
			continue
		}
		m := db.sessions[id]
		if m["k1"] == nil || m["k2"] == nil || m["k0"] == nil {
			lost++
			t.Errorf("%s: both events answered 200 (%q, %q), but memory holds %v", id, bodies[0], bodies[1], keys(m))
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d sessions lost an acknowledged change in memory", lost, sessions)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A change the adapter refuses for good (an empty key: a *LimitError, never
// accepted however often it is retried) must not be answered 503, which
// tells the client to retry.
func TestALimitErrorIsNotRetryable(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	db := &memDB{sessions: map[string]map[string][]byte{}}
	a := openNode(t, ks, "readme-limit", adapter.Hooks{})
	code, body := handle(context.Background(), a, db, "s-limit", "", "v", false)
	if code == http.StatusServiceUnavailable {
		t.Errorf("empty key: %d %q, want a 4xx (the request is invalid; a retry fails the same way)", code, body)
	}
}
