package examples

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// readmeCode is the code block of the README's "Embedding it" section.
func readmeCode(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "\n## Embedding it\n")
	if start < 0 {
		t.Fatal(`README.md has no "## Embedding it" section`)
	}
	section := readme[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	const open, closing = "```go\n", "\n```\n"
	i := strings.Index(section, open)
	if i < 0 {
		t.Fatal(`the "Embedding it" section has no Go code block`)
	}
	code := section[i+len(open):]
	j := strings.Index(code, closing)
	if j < 0 {
		t.Fatal(`the "Embedding it" section's Go code block is not closed`)
	}
	return code[:j+1]
}

// TestREADME: the README's embedding code is examples/readme/main.go from
// func main up to the in-memory database stand-in, byte for byte; and that
// program, run as two nodes against Cassandra, survives a SIGKILL of the
// first: the second adopts every session with its acknowledged state, ends
// one for good, and closes with a logged report.
func TestREADME(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("readme", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	from := bytes.Index(src, []byte("func main() {"))
	to := bytes.Index(src, []byte("// memDB stands in"))
	if from < 0 || to < from {
		t.Fatal("examples/readme/main.go: cannot find func main and the memDB stand-in after it")
	}
	want := string(bytes.TrimRight(src[from:to], "\n")) + "\n"
	if got := readmeCode(t); got != want {
		gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("the README's embedding code differs from examples/readme/main.go at line %d of the block:\nREADME: %q\nsource: %q", i+1, g, w)
			}
		}
	}

	ks := cassandratest.Keyspace(t)
	first := startReadmeNode(t, "readme-1", ks)
	second := startReadmeNode(t, "readme-2", ks)
	urls := map[string]string{first.id: first.url, second.id: second.url}

	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	var sessions []string
	for i := range 20 {
		s := fmt.Sprintf("call-%s-%d", tag, i)
		sessions = append(sessions, s)
		for n := 1; n <= 5; n++ {
			code, body := post(t, first.url, s, "n", strconv.Itoa(n), false)
			if code != http.StatusOK || !strings.Contains(body, "n="+strconv.Itoa(n)+" ") {
				t.Fatalf("%s event %d on %s: %d %q", s, n, first.id, code, body)
			}
		}
	}
	// Acknowledged over a second ago: written (the flush delay is 100ms).
	time.Sleep(time.Second)
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()

	// The balancer sends the next events to the second node; it forwards
	// them to the first (dead: the balancer tries again) until the first
	// one's lease expires, then adopts.
	deadline := time.Now().Add(30 * time.Second)
	forwarded := 0
	for _, s := range sessions {
		for {
			code, body := post(t, second.url, s, "after", "kill", false)
			if code == http.StatusOK {
				if !strings.Contains(body, "n=5 ") || !strings.Contains(body, "after=kill ") {
					t.Errorf("%s adopted by %s as %q: want n=5 and after=kill", s, second.id, body)
				}
				break
			}
			if code == http.StatusMisdirectedRequest {
				forwarded++
				if owner := strings.TrimSpace(body); urls[owner] == "" {
					t.Fatalf("%s forwarded to unknown node %q", s, owner)
				}
			} else if code != http.StatusServiceUnavailable {
				t.Fatalf("%s on %s: %d %q", s, second.id, code, body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not adopted by %s: last answer %d %q", s, second.id, code, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if forwarded == 0 {
		t.Error("no event was forwarded while the killed node's lease lasted")
	}

	// End is for good: the session starts afresh afterwards.
	if code, body := post(t, second.url, sessions[0], "", "", true); code != http.StatusOK || strings.TrimSpace(body) != "ended" {
		t.Fatalf("end %s: %d %q", sessions[0], code, body)
	}
	if code, body := post(t, second.url, sessions[0], "fresh", "1", false); code != http.StatusOK || strings.TrimSpace(body) != "fresh=1" {
		t.Fatalf("%s after its end: %d %q, want a fresh session", sessions[0], code, body)
	}

	// SIGTERM: Close with a deadline, its report logged.
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- second.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s after SIGTERM: %v\n%s", second.id, err, second.log)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not exit after SIGTERM\n%s", second.id, second.log)
	}
	if !strings.Contains(second.log.String(), `INFO closed released=20 unwritten=0 err=<nil>`) {
		t.Errorf("%s did not log its Close report (20 released, 0 unwritten):\n%s", second.id, second.log)
	}
}

type readmeNode struct {
	id, url string
	cmd     *exec.Cmd
	log     *syncBuffer
}

// startReadmeNode runs the README's program as node id and waits until it
// serves.
func startReadmeNode(t *testing.T, id, keyspace string) *readmeNode {
	t.Helper()
	hosts, port := cassandratest.Hosts(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	n := &readmeNode{id: id, url: "http://" + addr, log: &syncBuffer{}}
	n.cmd = exec.Command(filepath.Join(binDir, "readme"))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOLDOVER_") {
			n.cmd.Env = append(n.cmd.Env, kv)
		}
	}
	n.cmd.Env = append(n.cmd.Env,
		"HOLDOVER_CASSANDRA_HOSTS="+strings.Join(hosts, ","),
		"HOLDOVER_CASSANDRA_PORT="+strconv.Itoa(port),
		"HOLDOVER_KEYSPACE="+keyspace,
		"HOLDOVER_NODE_ID="+id,
		"HOLDOVER_LEASE_TTL=2s",
		"HOLDOVER_STATE_TTL=1h",
		"LISTEN="+addr)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
		t.Logf("%s log:\n%s", id, n.log)
	})
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(n.url + "/")
		if err == nil {
			resp.Body.Close()
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not serve: %v\n%s", id, err, n.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// post sends one event; a node that does not answer (killed) counts as 503.
func post(t *testing.T, base, session, key, value string, end bool) (int, string) {
	t.Helper()
	q := url.Values{"session": {session}, "key": {key}, "value": {value}}
	if end {
		q.Set("end", "1")
	}
	resp, err := http.Post(base+"/event?"+q.Encode(), "", nil)
	if err != nil {
		return http.StatusServiceUnavailable, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// syncBuffer is a bytes.Buffer a process writes while the test reads it.
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
