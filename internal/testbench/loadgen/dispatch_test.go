package loadgen

import (
	"context"
	"testing"
	"time"
)

// The dispatcher sends at most 100 ms of events late: what a stall left
// beyond that is not sent, and counts as saturated, so that sent and
// saturated together are the load the rate called for.
func TestEventsDroppedAfterAStallCountAsSaturated(t *testing.T) {
	g, err := New(Config{Nodes: []Node{{Name: "a", URL: "http://127.0.0.1:1"}}, Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	s := &session{id: "s"}
	s.parked.Store(true) // takes no load: every event due is saturated
	g.sessions = []*session{s}
	g.start = time.Now().Add(-time.Second) // the dispatcher starts 1 s behind
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); g.dispatch(context.Background(), stop) }()
	var sent, saturated int64
	for wait := time.Now().Add(2 * time.Second); saturated == 0 && time.Now().Before(wait); time.Sleep(10 * time.Millisecond) {
		g.mu.Lock()
		saturated = g.stats.saturated // 0 until the first tick
		g.mu.Unlock()
	}
	close(stop)
	<-done
	called := int64(g.cfg.Rate * time.Second.Seconds()) // at least this was due
	g.mu.Lock()
	sent, saturated = g.stats.sent, g.stats.saturated
	g.mu.Unlock()
	if sent != 0 || saturated < called {
		t.Fatalf("sent %d, saturated %d; the rate called for at least %d events", sent, saturated, called)
	}
}
