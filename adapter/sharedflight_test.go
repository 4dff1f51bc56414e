package adapter

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// delayProxy forwards TCP to Cassandra; while delay is set, every chunk
// sent by the client reaches Cassandra that much later (order kept), so a
// flush stays in flight as long as a test needs.
type delayProxy struct {
	ln     net.Listener
	target string
	delay  atomic.Int64
	mu     sync.Mutex
	conns  []net.Conn
}

func newDelayProxy(t *testing.T, host string, port int) *delayProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &delayProxy{ln: ln, target: net.JoinHostPort(host, strconv.Itoa(port))}
	t.Cleanup(p.close)
	go p.serve()
	return p
}

func (p *delayProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *delayProxy) serve() {
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
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(c, u) }()
		go p.delayed(u, c)
	}
}

type delayedChunk struct {
	at time.Time
	b  []byte
}

func (p *delayProxy) delayed(dst, src net.Conn) {
	ch := make(chan delayedChunk, 1024)
	go func() {
		for c := range ch {
			if d := time.Until(c.at); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(c.b); err != nil {
				return
			}
		}
	}()
	defer close(ch)
	for {
		buf := make([]byte, 64<<10)
		n, err := src.Read(buf)
		if n > 0 {
			ch <- delayedChunk{at: time.Now().Add(time.Duration(p.delay.Load())), b: buf[:n]}
		}
		if err != nil {
			return
		}
	}
}

func (p *delayProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// sharedChangeLog records OnSharedChange calls.
type sharedChangeLog struct {
	mu      sync.Mutex
	changes []SharedChange
}

func (l *sharedChangeLog) hook(_ string, cs []SharedChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes = append(l.changes, cs...)
}

func (l *sharedChangeLog) all() []SharedChange {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]SharedChange(nil), l.changes...)
}

// A node commits a key's value while its previous flush of the same value
// is in flight. The first flush's landing marked the second (still pending)
// commit as landed; when the second write landed, the view kept the first
// write's timestamp, so the next re-read reported the node's own write to
// OnSharedChange as a change made by another node. Found by review.
func TestASharedRecommitDuringItsFlushIsNotReportedAsAPeersChange(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	hosts, port := cassandratest.Hosts(t)
	proxy := newDelayProxy(t, hosts[0], port)
	fams := Families{{Name: "settings", Shared: true, Refresh: 200 * time.Millisecond, FlushDelay: 2 * time.Second}}
	cfg := testConfig(t, "recommit-a", ks)
	cfg.Hosts, cfg.Port = []string{"127.0.0.1"}, proxy.port()
	cfg.Families = fams
	var la sharedChangeLog
	a := openNode(t, cfg, WithHooks(Hooks{OnSharedChange: la.hook}))
	const s = "settings:inflight"

	if err := a.CommitShared(s, put("k", "B")); err != nil {
		t.Fatal(err)
	}
	proxy.delay.Store(int64(600 * time.Millisecond))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- a.Flush(ctx) // takes the snapshot {k=B} and writes it, slowly
	}()
	time.Sleep(200 * time.Millisecond)                       // the write is in flight
	if err := a.CommitShared(s, put("k", "B")); err != nil { // same value again
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	proxy.delay.Store(0)
	flush(t, a)                         // the second write lands
	time.Sleep(1500 * time.Millisecond) // several re-reads
	for _, c := range la.all() {
		if c.Session == s {
			t.Errorf("own write reported to OnSharedChange as another node's change: %+v", c)
		}
	}
}

// A node ends a shared session twice, the second End while the first one's
// write is in flight. The first End's landing marked the second (pending)
// End as landed, so a re-read before the second End was written showed
// another node's earlier write (which the pending End deletes) in this
// node's view and reported it to OnSharedChange. With a single pending End
// the view hides it, as it must. Found by review.
func TestASecondEndSharedKeepsShieldingItsSession(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	hosts, port := cassandratest.Hosts(t)
	proxy := newDelayProxy(t, hosts[0], port)
	fams := Families{{Name: "settings", Shared: true, Refresh: 150 * time.Millisecond, FlushDelay: 4 * time.Second}}
	ca := testConfig(t, "end2-a", ks)
	ca.Hosts, ca.Port = []string{"127.0.0.1"}, proxy.port()
	ca.Families = fams
	cb := testConfig(t, "end2-b", ks)
	cb.Families = fams
	var la sharedChangeLog
	a := openNode(t, ca, WithHooks(Hooks{OnSharedChange: la.hook}))
	b := openNode(t, cb)
	const s = "settings:end2"

	if err := a.CommitShared(s, put("k", "v0")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	if err := a.EndShared(s); err != nil {
		t.Fatal(err)
	}
	proxy.delay.Store(int64(600 * time.Millisecond))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- a.Flush(ctx) // End #1, slowly
	}()
	time.Sleep(200 * time.Millisecond)
	if err := a.EndShared(s); err != nil { // End #2, pending for 4s after End #1 lands
		t.Fatal(err)
	}
	// b writes k after End #1 was taken and before End #2 will be: End #2
	// deletes it when it lands (b's timestamp is below End #2's).
	if err := b.CommitShared(s, put("k", "from-b")); err != nil {
		t.Fatal(err)
	}
	flush(t, b)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	proxy.delay.Store(0)
	// End #2 is acknowledged and pending; a's view must not show b's older
	// write.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		m, err := a.Shared(s)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := m["k"]; ok {
			t.Errorf("after this node's EndShared (pending), its view shows %s/k = %q, a write that End deletes", s, v)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range la.all() {
		if c.Session == s && !c.Deleted {
			t.Errorf("OnSharedChange reported %+v, which this node's pending End deletes", c)
		}
	}
	flush(t, a)
	waitShared(t, b, s, "k", "", true, 3*time.Second) // End #2 did delete it
}

// Same cause, seen as a wrong value: after the in-flight flush landed, the
// node's second (pending) commit of k=B was taken as landed, so a re-read
// replaced it in the view with another node's write that B overwrites when
// it is written (its timestamp is taken later). A pending own write must
// shield its key, as it does when no flush of the key was in flight. Found
// by review.
func TestAPendingSharedRecommitStaysShielded(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	hosts, port := cassandratest.Hosts(t)
	proxy := newDelayProxy(t, hosts[0], port)
	fams := Families{{Name: "settings", Shared: true, Refresh: 150 * time.Millisecond, FlushDelay: 4 * time.Second}}
	ca := testConfig(t, "shield-a", ks)
	ca.Hosts, ca.Port = []string{"127.0.0.1"}, proxy.port()
	ca.Families = fams
	cb := testConfig(t, "shield-b", ks)
	cb.Families = fams
	a := openNode(t, ca)
	b := openNode(t, cb)
	const s = "settings:shield"

	if err := a.CommitShared(s, put("k", "B")); err != nil {
		t.Fatal(err)
	}
	proxy.delay.Store(int64(600 * time.Millisecond))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- a.Flush(ctx)
	}()
	time.Sleep(200 * time.Millisecond)
	if err := a.CommitShared(s, put("k", "B")); err != nil { // pending for 4s after the first lands
		t.Fatal(err)
	}
	if err := b.CommitShared(s, put("k", "C")); err != nil { // before a's pending B is taken: B wins
		t.Fatal(err)
	}
	flush(t, b)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	proxy.delay.Store(0)
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		m, _ := a.Shared(s)
		if string(m["k"]) != "B" {
			t.Errorf("a's view of its own pending k=B shows %q", m["k"])
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	flush(t, a)
	waitShared(t, b, s, "k", "B", false, 3*time.Second) // B did win in Cassandra
}

// Close promises to return by ctx's deadline whatever Cassandra does. With a
// shared family and Cassandra unresponsive, it waited for the family's
// refresh goroutine, whose read ran under its own timeout
// (max(refresh, HOLDOVER_TIMEOUT)) that Close did not cancel, and whose loop
// could pick a pending tick over the stop signal and start another read:
// 10 to 25 s for a 2 s deadline. Found by review.
func TestCloseWithASharedFamilyKeepsItsDeadline(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	hosts, port := cassandratest.Hosts(t)
	proxy := newStallProxy(t, hosts[0], port)
	cfg := testConfig(t, "shared-close-deadline", ks)
	cfg.Hosts, cfg.Port = []string{"127.0.0.1"}, proxy.port()
	cfg.LeaseTTL = 30 * time.Second
	// HOLDOVER_TIMEOUT stays at its default (5s).
	cfg.Families = Families{{Name: "settings", Shared: true, FlushDelay: 10 * time.Millisecond, Refresh: 100 * time.Millisecond}}
	a := openNode(t, cfg)
	if err := a.CommitShared("settings:w", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	proxy.stall()
	time.Sleep(300 * time.Millisecond) // a re-read is now waiting on Cassandra
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	began := time.Now()
	_, err := a.Close(ctx)
	took := time.Since(began)
	if took > 3*time.Second {
		t.Errorf("Close with a 2s deadline returned after %v (%v)", took.Round(time.Millisecond), err)
	}
}
