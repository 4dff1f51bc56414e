package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// testConfig is an adapter configuration for node id on a test keyspace.
func testConfig(t *testing.T, id, keyspace string) adapter.Config {
	t.Helper()
	hosts, port := cassandratest.Hosts(t)
	cfg := adapter.DefaultConfig()
	cfg.Hosts, cfg.Port, cfg.Keyspace, cfg.NodeID = hosts, port, keyspace, id
	cfg.FlushDelay = 20 * time.Millisecond
	cfg.LeaseTTL = 3 * time.Second
	return cfg
}

// testNode is a node serving its API on a loopback httptest server.
type testNode struct {
	*Node
	t   *testing.T
	url string
}

// startNode opens a node for cfg and serves it; both stop when the test ends.
func startNode(t *testing.T, cfg adapter.Config) *testNode {
	t.Helper()
	return startNodeWith(t, cfg, Options{})
}

// startNodeWith is startNode with options (metrics are the test's, and so is
// the logger unless opts has one).
func startNodeWith(t *testing.T, cfg adapter.Config, opts Options) *testNode {
	t.Helper()
	m, err := NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	opts.MeterProvider, opts.Metrics = m.Provider, m.Handler
	n := New(cfg, opts)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.Open(ctx); err != nil {
		t.Fatalf("open node %s: %v", cfg.NodeID, err)
	}
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = n.Close(ctx)
		_ = m.Shutdown(ctx)
	})
	return &testNode{Node: n, t: t, url: srv.URL}
}

// testWriter sends logs to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// reply is a decoded response.
type reply struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (r reply) str(k string) string { s, _ := r.Body[k].(string); return s }
func (r reply) num(k string) int    { f, _ := r.Body[k].(float64); return int(f) }

func (tn *testNode) do(method, path, body string) reply {
	tn.t.Helper()
	req, err := http.NewRequest(method, tn.url+path, strings.NewReader(body))
	if err != nil {
		tn.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tn.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.NewDecoder(bytes.NewReader(raw)).Decode(&r.Body)
	return r
}

// event posts an event body to session id.
func (tn *testNode) event(id, body string) reply {
	tn.t.Helper()
	return tn.do("POST", "/v1/sessions/"+id+"/events", body)
}

// must posts an event and fails the test unless it answers 200.
func (tn *testNode) must(id, body string) reply {
	tn.t.Helper()
	r := tn.event(id, body)
	if r.Status != http.StatusOK {
		tn.t.Fatalf("%s on %s %s: %d %s", body, tn.NodeID(), id, r.Status, r.Raw)
	}
	return r
}

func (tn *testNode) get(path string) reply {
	tn.t.Helper()
	return tn.do("GET", path, "")
}

// expect fails the test unless r has the status and its error contains
// every fragment.
func expect(t *testing.T, what string, r reply, status int, fragments ...string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.Status, status, r.Raw)
	}
	for _, f := range fragments {
		if !strings.Contains(r.str("error"), f) {
			t.Fatalf("%s: error %q does not mention %q", what, r.str("error"), f)
		}
	}
}

func flushNode(t *testing.T, tn *testNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tn.Adapter().Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// httptestServer serves n (opened or not) until the test ends.
func httptestServer(t *testing.T, n *Node) string {
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// syncBuffer is a bytes.Buffer safe for a node's concurrent log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
