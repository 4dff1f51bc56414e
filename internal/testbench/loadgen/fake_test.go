package loadgen

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCluster is an in-memory stand-in for holdover nodes sharing one
// Cassandra, following the node's HTTP contract: resident sessions are
// flushed to the shared store flushDelay (+ flushLag) after their first
// unflushed change; a killed node loses what it had not flushed and its lease
// stays live for leaseTTL, during which adoption answers 409 naming it.
type fakeCluster struct {
	flushDelay, leaseTTL time.Duration

	mu     sync.Mutex
	stored map[string]*fakeSession // what "Cassandra" holds
	leases map[string]time.Time    // node ID → lease expiry; absent = live
	nodes  []*fakeNode

	// Families, as a node with HOLDOVER_FAMILIES: the sessions named
	// "<name>:..." flush after their family's delay, and GET /v1/info lists
	// them (shared ones too, which the fake does not serve).
	famDelays map[string]time.Duration
	famShared map[string]bool

	// Faults.
	flushLag       time.Duration // flush this much later than promised
	corruptRestore bool          // restore an altered state
	flakyEvery     int           // every n-th event: 503 (not applied) or applied and the connection cut, in turn
	replyDelay     time.Duration // between applying an event and answering: events are in flight at a kill
	refuseCreates  time.Time     // until then, creations are refused with 503 (creations backed up)
	events         int
}

type fakeSession struct {
	version    int
	st         sessionState
	owner      string
	dirtySince time.Time // zero when flushed
}

type fakeNode struct {
	c        *fakeCluster
	id       string
	srv      *httptest.Server
	resident map[string]*fakeSession // guarded by c.mu
	stop     chan struct{}
	done     chan struct{}
}

func newFakeCluster(t *testing.T, flushDelay, leaseTTL time.Duration) *fakeCluster {
	return &fakeCluster{flushDelay: flushDelay, leaseTTL: leaseTTL,
		stored: map[string]*fakeSession{}, leases: map[string]time.Time{}}
}

// start starts a node; it stops at the end of the test.
func (c *fakeCluster) start(t *testing.T, id string) *fakeNode {
	n := &fakeNode{c: c, id: id, resident: map[string]*fakeSession{}, stop: make(chan struct{}), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/sessions/{id}/events", n.event)
	mux.HandleFunc("GET /v1/sessions/{id}", n.get)
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		fams := []map[string]any{{"name": "", "flush_delay_ms": c.flushDelay.Milliseconds()}}
		for _, name := range slices.Sorted(maps.Keys(c.famDelays)) {
			fams = append(fams, map[string]any{"name": name, "flush_delay_ms": c.famDelays[name].Milliseconds(), "shared": c.famShared[name]})
		}
		reply(w, 200, map[string]any{"node": id, "flush_delay_ms": c.flushDelay.Milliseconds(), "keyspace": "fake", "sessions": len(n.resident),
			"family_stats": fams})
	})
	n.srv = httptest.NewServer(mux)
	go n.flusher()
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	t.Cleanup(n.kill)
	return n
}

func (n *fakeNode) node(name string) Node { return Node{Name: name, URL: n.srv.URL} }

// kill crashes the node: unflushed state is gone, the lease runs out after
// leaseTTL, connections are cut.
func (n *fakeNode) kill() {
	c := n.c
	c.mu.Lock()
	if n.resident == nil {
		c.mu.Unlock()
		return
	}
	// A node that keeps its promise has written, by the time it dies,
	// every change due before then. The flusher goroutine may not have
	// run for a while on a loaded machine (the race detector, parallel
	// suites): write what is due here, so the fake's promise does not
	// depend on the scheduler.
	now := time.Now()
	n.flushDueLocked(now)
	n.resident = nil
	c.leases[n.id] = now.Add(c.leaseTTL)
	c.mu.Unlock()
	close(n.stop)
	<-n.done
	n.srv.CloseClientConnections()
	n.srv.Close()
}

func (n *fakeNode) flusher() {
	defer close(n.done)
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case now := <-t.C:
			n.c.mu.Lock()
			n.flushDueLocked(now)
			n.c.mu.Unlock()
		}
	}
}

// flushDueLocked writes every resident session whose first unflushed
// change is at least its flush delay (plus the fault's lag) old at now.
func (n *fakeNode) flushDueLocked(now time.Time) {
	c := n.c
	for id, s := range n.resident {
		if !s.dirtySince.IsZero() && now.Sub(s.dirtySince) >= c.delayOf(id)+c.flushLag {
			s.dirtySince = time.Time{}
			c.stored[id] = &fakeSession{version: s.version, st: s.st.clone(), owner: n.id}
		}
	}
}

// delayOf is the flush delay of session id: its family's, or the node's.
func (c *fakeCluster) delayOf(id string) time.Duration {
	if name, _, ok := strings.Cut(id, ":"); ok {
		if d, ok := c.famDelays[name]; ok {
			return d
		}
	}
	return c.flushDelay
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// adoptLocked makes id resident on n from the store, or answers why not.
func (n *fakeNode) adoptLocked(w http.ResponseWriter, id string) *fakeSession {
	c := n.c
	st := c.stored[id]
	if st == nil {
		reply(w, 404, map[string]string{"error": "not found"})
		return nil
	}
	if exp, dead := c.leases[st.owner]; st.owner != n.id && (!dead || time.Now().Before(exp)) {
		reply(w, 409, map[string]string{"error": "owned by a live node", "owner": st.owner})
		return nil
	}
	st.owner = n.id
	s := &fakeSession{version: st.version, st: st.st.clone()}
	if c.corruptRestore {
		if s.st.Attrs == nil {
			s.st.Attrs = map[string]string{}
		}
		s.st.Attrs["state"] = "corrupted"
	}
	n.resident[id] = s
	return s
}

func (n *fakeNode) event(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var ev event
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		reply(w, 400, map[string]string{"error": err.Error()})
		return
	}
	c := n.c
	c.mu.Lock()
	if n.resident == nil {
		c.mu.Unlock()
		panic(http.ErrAbortHandler)
	}
	c.events++
	fault := 0
	if c.flakyEvery > 0 && c.events%c.flakyEvery == 0 {
		fault = 1 + (c.events/c.flakyEvery)%2
	}
	if fault == 1 {
		c.mu.Unlock()
		reply(w, 503, map[string]string{"error": "buffer full"})
		return
	}
	if ev.Type == "create" && time.Now().Before(c.refuseCreates) {
		c.mu.Unlock()
		reply(w, 503, map[string]string{"error": "overloaded: new sessions wait while ownership creations are backed up"})
		return
	}
	s, adopted := n.resident[id], false
	switch {
	case ev.Type == "create" && (s != nil || c.stored[id] != nil):
		c.mu.Unlock()
		reply(w, 409, map[string]string{"error": "exists", "owner": n.id})
		return
	case ev.Type == "create":
		s = &fakeSession{st: sessionState{Attrs: maps.Clone(ev.Attrs)}}
		n.resident[id] = s
	case s == nil:
		if s = n.adoptLocked(w, id); s == nil {
			c.mu.Unlock()
			return
		}
		adopted = true
	}
	switch ev.Type {
	case "update":
		if s.st.Attrs == nil {
			s.st.Attrs = map[string]string{}
		}
		maps.Copy(s.st.Attrs, ev.Attrs)
	case "append":
		s.st.History = append(slices.Clip(s.st.History), ev.Entry)
	}
	s.version++
	if s.dirtySince.IsZero() {
		s.dirtySince = time.Now()
	}
	v, delay := s.version, c.replyDelay
	c.mu.Unlock()
	time.Sleep(delay)
	if fault == 2 {
		panic(http.ErrAbortHandler) // applied, but the client never hears of it
	}
	reply(w, 200, map[string]any{"session": id, "node": n.id, "version": v, "adopted": adopted})
}

func (n *fakeNode) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if n.resident == nil {
		panic(http.ErrAbortHandler)
	}
	s := n.resident[id]
	if s == nil && r.URL.Query().Get("adopt") == "true" {
		if s = n.adoptLocked(w, id); s == nil {
			return
		}
	}
	if s == nil {
		reply(w, 404, map[string]string{"error": "not resident"})
		return
	}
	attrs, hist := s.st.Attrs, s.st.History
	if attrs == nil {
		attrs = map[string]string{}
	}
	if hist == nil {
		hist = []string{}
	}
	reply(w, 200, map[string]any{"session": id, "node": n.id, "version": s.version, "attrs": attrs, "history": hist, "resident": true})
}
