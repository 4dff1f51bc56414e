// Package faulttest holds test doubles that put a node in a chosen state at a
// chosen moment, for tests against a real Cassandra: AdoptionGate holds an
// adoption after it claimed its session, and CutProxy cuts a node off from
// Cassandra.
package faulttest

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// AdoptionGate is a tracer provider (adapter.WithTracerProvider) whose first
// adoption span, when it ends, closes Adopted and waits for Release to be
// closed: the adoption has claimed its session and not yet returned it.
type AdoptionGate struct {
	noop.TracerProvider
	Adopted, Release chan struct{}
	once             sync.Once
}

// NewAdoptionGate returns a gate with its channels made.
func NewAdoptionGate() *AdoptionGate {
	return &AdoptionGate{Adopted: make(chan struct{}), Release: make(chan struct{})}
}

// Tracer implements trace.TracerProvider.
func (g *AdoptionGate) Tracer(string, ...trace.TracerOption) trace.Tracer { return gateTracer{g: g} }

type gateTracer struct {
	noop.Tracer
	g *AdoptionGate
}

func (t gateTracer) Start(ctx context.Context, name string, _ ...trace.SpanStartOption) (context.Context, trace.Span) {
	if name != "holdover.adopt" {
		return ctx, noop.Span{}
	}
	return ctx, gateSpan{g: t.g}
}

type gateSpan struct {
	noop.Span
	g *AdoptionGate
}

func (s gateSpan) End(...trace.SpanEndOption) {
	s.g.once.Do(func() {
		close(s.g.Adopted)
		<-s.g.Release
	})
}

// CutProxy forwards TCP connections to Cassandra until Cut, which closes
// them all and refuses new ones: the node's requests fail at once.
type CutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	isCut  bool
	conns  []net.Conn
}

// NewCutProxy listens on a port of 127.0.0.1 (Port) and forwards to
// host:port until Cut or the test's end.
func NewCutProxy(t testing.TB, host string, port int) *CutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &CutProxy{ln: ln, target: net.JoinHostPort(host, strconv.Itoa(port))}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go p.serve()
	return p
}

// Port is the proxy's port on 127.0.0.1.
func (p *CutProxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *CutProxy) serve() {
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

// Cut closes every connection and refuses new ones.
func (p *CutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isCut = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
