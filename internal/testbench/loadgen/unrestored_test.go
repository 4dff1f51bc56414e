package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A session no survivor served within AdoptTimeout has a failover time of at
// least that wait: the failover figures count it, rather than leave it out
// and report only the sessions that were served.
func TestAnUnrestoredSessionCountsInTheFailoverFigures(t *testing.T) {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reply409(w, "node-a") // the failed node's lease never runs out
	}))
	defer b.Close()
	g, err := New(Config{Nodes: []Node{{Name: "a", URL: "http://127.0.0.1:1"}, {Name: "b", URL: b.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	g.nodes[0].id, g.nodes[1].id = "node-a", "node-b"
	g.nodes[0].failed.Store(true)
	s := &session{id: "s"}
	failedAt := time.Now()
	g.adopt(context.Background(), s, g.nodes[1], g.nodes[0], failedAt, failedAt, failedAt, failedAt.Add(300*time.Millisecond))
	rep := g.report()
	if rep.Unrestored != 1 {
		t.Fatalf("unrestored=%d, want 1", rep.Unrestored)
	}
	if rep.FailoverMaxMs < 200 || rep.FailoverP50Ms < 200 {
		t.Fatalf("failover p50/max = %v / %v ms for a session unserved after 300 ms of retries; want at least the wait given up", rep.FailoverP50Ms, rep.FailoverMaxMs)
	}
}
