package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Two survivors that each answer an adoption 409 naming the other (a bug of
// theirs) sent the redirect back and forth at once, with no backoff and no
// look at the deadline: the run never ended. The session is now reported
// unrestored at the deadline. Found by review.
func TestSurvivorsNamingEachOtherEndAtTheDeadline(t *testing.T) {
	owner := func(other string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			reply409(w, other)
		}))
	}
	b, c := owner("node-c"), owner("node-b")
	defer b.Close()
	defer c.Close()
	g, err := New(Config{Nodes: []Node{{Name: "a", URL: "http://127.0.0.1:1"}, {Name: "b", URL: b.URL}, {Name: "c", URL: c.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	g.nodes[0].id, g.nodes[1].id, g.nodes[2].id = "node-a", "node-b", "node-c"
	g.nodes[0].failed.Store(true)
	s := &session{id: "s"}
	done := make(chan struct{})
	now := time.Now()
	go func() {
		defer close(done)
		g.adopt(context.Background(), s, g.nodes[1], g.nodes[0], now, now, now, now.Add(500*time.Millisecond))
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the redirect still bounces between two survivors 5 s after its 500 ms deadline")
	}
	if !s.broken.Load() || g.stats.unrestored != 1 {
		t.Errorf("session after the deadline: broken %v, unrestored %d; want it reported unrestored", s.broken.Load(), g.stats.unrestored)
	}
}

func reply409(w http.ResponseWriter, owner string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusConflict)
	_, _ = w.Write([]byte(`{"error":"owned by a live node","owner":"` + owner + `"}`))
}
