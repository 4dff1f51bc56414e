package adapter

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stallProxy forwards TCP connections to Cassandra until stall is called;
// from then on it accepts bytes and forwards none, as a network partition
// does: requests neither fail nor get answered. While delay is set, what the
// client sends reaches Cassandra that much later (order kept), so a write
// stays in flight as long as a test needs.
type stallProxy struct {
	ln      net.Listener
	target  string
	stalled atomic.Bool
	delay   atomic.Int64 // nanoseconds
	mu      sync.Mutex
	conns   []net.Conn
}

func newStallProxy(t *testing.T, host string, port int) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: net.JoinHostPort(host, strconv.Itoa(port))}
	t.Cleanup(p.close)
	go p.serve()
	return p
}

// port is the proxy's port on 127.0.0.1.
func (p *stallProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *stallProxy) stall() { p.stalled.Store(true) }

func (p *stallProxy) serve() {
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
		go p.pipe(u, c)
		go p.pipe(c, u)
	}
}

// pipe copies from src to dst until the proxy stalls, then swallows src.
// What the client sends (dst is Cassandra) is held for the delay set when
// it was read, by a writer of its own, so that chunks keep their order and
// each waits the delay once.
func (p *stallProxy) pipe(dst, src net.Conn) {
	type chunk struct {
		due time.Time
		b   []byte
	}
	write := func(b []byte) error {
		if p.stalled.Load() {
			return nil
		}
		_, err := dst.Write(b)
		return err
	}
	var queue chan chunk
	if dst.RemoteAddr().String() == p.target {
		queue = make(chan chunk, 1024)
		defer close(queue)
		go func() {
			for c := range queue {
				time.Sleep(time.Until(c.due))
				if write(c.b) != nil {
					return
				}
			}
		}()
	}
	for {
		buf := make([]byte, 64<<10)
		n, err := src.Read(buf)
		if n > 0 {
			if queue != nil {
				queue <- chunk{time.Now().Add(time.Duration(p.delay.Load())), buf[:n]}
			} else if write(buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}
