package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// An event checked the node's lease once, before adopting its session, and
// acknowledged its change however long the adoption took: a node whose
// lease lapsed meanwhile answered 200 for a change a peer adopting the
// session would never see (I1). Here the lease lapses after the adoption
// claimed the session and before the event commits.
func TestAnEventIsRefusedWhenTheLeaseLapsesDuringItsAdoption(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	hosts, port := cassandratest.Hosts(t)

	b := startNode(t, testConfig(t, "lapse-b", ks))
	b.must("lapse", `{"type":"create","attrs":{"k":"v"}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.Close(ctx); err != nil { // released: node a adopts it at once
		t.Fatal(err)
	}

	proxy := newCutProxy(t, hosts[0], port)
	cfg := testConfig(t, "lapse-a", ks)
	cfg.Hosts, cfg.Port = []string{"127.0.0.1"}, proxy.port()
	cfg.LeaseTTL = time.Second
	cfg.Timeout = 200 * time.Millisecond
	tp := &adoptionGate{adopted: make(chan struct{}), release: make(chan struct{})}
	a := New(cfg, Options{
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		AdapterOptions: []adapter.Option{adapter.WithTracerProvider(tp)},
	})
	if err := a.Open(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = a.Close(ctx)
	})

	answer := make(chan reply, 1)
	go func() {
		tn := &testNode{Node: a, t: t, url: srv.URL}
		answer <- tn.doQuiet("POST", "/v1/sessions/lapse/events", `{"type":"update","attrs":{"k":"w"}}`)
	}()
	select {
	case <-tp.adopted:
	case r := <-answer:
		t.Fatalf("event answered before its adoption ended: %d %s", r.Status, r.Raw)
	case <-time.After(10 * time.Second):
		t.Fatal("the event's adoption did not end")
	}
	// The adoption claimed the session; now the node loses Cassandra and its
	// lease runs out before the event commits.
	proxy.cut()
	deadline := time.Now().Add(10 * time.Second)
	for a.Adapter().LeaseValid() {
		if time.Now().After(deadline) {
			t.Fatal("lease still valid 10s after Cassandra was cut off")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(tp.release)
	r := <-answer
	if r.Status == http.StatusOK {
		t.Fatalf("event acknowledged by a node whose lease lapsed before it committed: %s", r.Raw)
	}
	expect(t, "event after the lease lapsed", r, http.StatusServiceUnavailable, "fenced")
}

// doQuiet is do for another goroutine: it reports a failed request in the
// reply (status 0) instead of ending the test.
func (tn *testNode) doQuiet(method, path, body string) reply {
	req, err := http.NewRequest(method, tn.url+path, strings.NewReader(body))
	if err != nil {
		return reply{Raw: err.Error()}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{Raw: err.Error()}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	return r
}

// adoptionGate is a tracer provider whose first adoption span, when it ends,
// signals adopted and waits for release: the adoption has claimed the
// session and not yet returned it.
type adoptionGate struct {
	noop.TracerProvider
	adopted, release chan struct{}
	once             sync.Once
}

func (g *adoptionGate) Tracer(string, ...trace.TracerOption) trace.Tracer { return gateTracer{g: g} }

type gateTracer struct {
	noop.Tracer
	g *adoptionGate
}

func (t gateTracer) Start(ctx context.Context, name string, _ ...trace.SpanStartOption) (context.Context, trace.Span) {
	if name != "holdover.adopt" {
		return ctx, noop.Span{}
	}
	return ctx, gateSpan{g: t.g}
}

type gateSpan struct {
	noop.Span
	g *adoptionGate
}

func (s gateSpan) End(...trace.SpanEndOption) {
	s.g.once.Do(func() {
		close(s.g.adopted)
		<-s.g.release
	})
}

// cutProxy forwards TCP connections to Cassandra until cut, which closes
// them all and refuses new ones: the node's requests fail at once.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	isCut  bool
	conns  []net.Conn
}

func newCutProxy(t *testing.T, host string, port int) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: net.JoinHostPort(host, strconv.Itoa(port))}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *cutProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.isCut {
			p.mu.Unlock()
			c.Close()
			u.Close()
			continue
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); u.Close() }()
		go func() { _, _ = io.Copy(c, u); c.Close() }()
	}
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isCut = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
