package node

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// POST /v1/takeover/{node} adopts every session of a node that is gone and
// makes each resident at once; a live node is refused (409) unless forced;
// bad input is 400.
func TestTakeoverMakesSessionsResident(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	a := startNode(t, testConfig(t, "to-a", ks))
	b := startNode(t, testConfig(t, "to-b", ks))
	for i := range 5 {
		id := fmt.Sprint("t", i)
		a.must(id, `{"type":"create","attrs":{"n":"`+id+`"}}`)
		a.must(id, `{"type":"append","entry":"on a"}`)
	}
	flushNode(t, a)

	r := b.do("POST", "/v1/takeover/to-a", "")
	expect(t, "takeover of a live node", r, 409, `node "to-a" is live`, "force=true")
	if r.str("owner") != "to-a" {
		t.Fatalf("409 without the owner: %s", r.Raw)
	}
	expect(t, "takeover of itself", b.do("POST", "/v1/takeover/to-b", ""), 400, "its own sessions")
	expect(t, "force=maybe", b.do("POST", "/v1/takeover/to-a?force=maybe", ""), 400, "force")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Close(ctx); err != nil { // releases its sessions, drops its lease
		t.Fatal(err)
	}
	// B saw to-a live a moment ago and may trust that for up to half a
	// renewal period (HOLDOVER_LEASE_TTL/6).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if r = b.do("POST", "/v1/takeover/to-a", ""); r.Status != 409 || time.Now().After(deadline) {
			break
		}
	}
	if r.Status != 200 || r.num("listed") != 5 || r.num("adopted") != 5 || r.num("restored") != 5 || r.num("failed") != 0 || r.str("from") != "to-a" {
		t.Fatalf("takeover of a node that shut down: %d %s", r.Status, r.Raw)
	}
	for i := range 5 {
		id := fmt.Sprint("t", i)
		g := b.get("/v1/sessions/" + id) // resident: no adoption needed
		if g.Status != 200 || g.num("version") != 2 || g.Body["adopted"] != false {
			t.Fatalf("%s after the takeover: %d %s", id, g.Status, g.Raw)
		}
	}
	if r := b.must("t0", `{"type":"append","entry":"on b"}`); r.Body["adopted"] != false || r.num("version") != 3 {
		t.Fatalf("event after the takeover: %s", r.Raw)
	}
	// Nothing left under to-a: a second takeover lists nothing.
	if r := b.do("POST", "/v1/takeover/to-a", ""); r.Status != 200 || r.num("listed") != 0 {
		t.Fatalf("second takeover: %d %s", r.Status, r.Raw)
	}
}

// startBinary runs cmd/holdover-node as node id on keyspace ks (JSON logs)
// and returns it once ready; the test kills it at the end.
func startBinary(t *testing.T, id, ks string, env ...string) (*testNode, *exec.Cmd) {
	t.Helper()
	hosts, port := cassandratest.Hosts(t)
	cmd := exec.Command(nodeBinary(t))
	cmd.Env = cleanEnv(append([]string{
		"HOLDOVER_CASSANDRA_HOSTS=" + strings.Join(hosts, ","), "HOLDOVER_CASSANDRA_PORT=" + strconv.Itoa(port),
		"HOLDOVER_KEYSPACE=" + ks, "HOLDOVER_NODE_ID=" + id, "HOLDOVER_NODE_LISTEN=127.0.0.1:0", "HOLDOVER_LOG_FORMAT=json",
	}, env...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "holdover-node listening" {
				addr <- rec["addr"].(string)
			}
		}
	}()
	var tn *testNode
	select {
	case a := <-addr:
		tn = &testNode{t: t, url: "http://" + a}
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s did not log its address", id)
	}
	for deadline := time.Now().Add(30 * time.Second); tn.get("/readyz").Status != 200; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("node %s never became ready", id)
		}
	}
	return tn, cmd
}

// With TakeoverOnExpiry, a node refused an adoption by a live peer watches
// that peer's lease: once the peer dies and its lease expires, the node takes
// over every session of it at once, with no event asking, and they are
// resident when their events come.
func TestTakeoverOnExpiry(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	a, cmd := startBinary(t, "toe-a", ks, "HOLDOVER_LEASE_TTL=2s", "HOLDOVER_FLUSH_DELAY=20ms")
	cfg := testConfig(t, "toe-b", ks)
	cfg.LeaseTTL = 2 * time.Second
	b := startNodeWith(t, cfg, Options{TakeoverOnExpiry: true})
	for i := range 20 {
		a.must(fmt.Sprint("e", i), `{"type":"create","attrs":{"n":"x"}}`)
	}
	time.Sleep(300 * time.Millisecond) // A's first flushes record them
	expect(t, "event for a live peer's session", b.event("e0", `{"type":"append","entry":"on b"}`), 409, "toe-a")
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: A's lease runs out by itself
		t.Fatal(err)
	}
	killed := time.Now()
	for b.Table().Len() < 20 {
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("%d of A's 20 sessions resident on B 10 s after A died (lease 2 s)", b.Table().Len())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("all 20 sessions resident on B %v after A's SIGKILL (lease TTL 2 s)", time.Since(killed).Round(time.Millisecond))
	for i := range 20 {
		if r := b.must(fmt.Sprint("e", i), `{"type":"append","entry":"on b"}`); r.Body["adopted"] != false || r.num("version") != 2 {
			t.Fatalf("event after the takeover: %s", r.Raw)
		}
	}
}

// With AdoptWait (HOLDOVER_NODE_ADOPT_WAIT), an event for a session whose
// owner's lease is live waits for that lease to run out instead of being
// answered 409: a request redirected from a node that died is served the
// moment its lease ends, and the client never retries.
func TestAdoptWaitServesOnceTheLeaseEnds(t *testing.T) {
	t.Parallel()
	b := afterDeath(t, "aw", "w0", Options{AdoptWait: 5 * time.Second})
	r := b.event("w0", `{"type":"append","entry":"on b"}`)
	if r.Status != 200 || r.Body["adopted"] != true || r.num("version") != 3 {
		t.Fatalf("event for a dead node's session on a node that waits for its lease: %d %s, want 200, adopted at version 3", r.Status, r.Raw)
	}
}

// An event that holds a session's transaction while a takeover adopts that
// session finds it owned here (ErrAlreadyOwned) and takes the state the
// takeover read, instead of flushing the whole buffer and reading it back;
// the takeover, which waited for the transaction, then leaves the session
// to the event (it may have changed or ended it since).
func TestEventRacingATakeoverTakesItsState(t *testing.T) {
	t.Parallel()
	b := afterDeath(t, "rt", "r0", Options{})
	tx := b.table.Begin("r0") // an event holds r0
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for {
			res, err := b.Takeover(ctx, "rt-a", false)
			if err == nil && res.Adopted == 1 && res.Restored == 0 {
				done <- nil
				return
			}
			if err == nil || ctx.Err() != nil {
				done <- fmt.Errorf("takeover: %+v %v, want r0 adopted and left to the event", res, err)
				return
			}
			time.Sleep(50 * time.Millisecond) // A's lease is still live
		}
	}()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := b.takenOver.Load("r0"); ok {
			break // adopted; the restore waits for tx
		}
		if time.Now().After(deadline) {
			t.Fatal("the takeover never adopted r0")
		}
	}
	ad, err := b.adapter()
	if err != nil {
		t.Fatal(err)
	}
	reads := ad.Stats().Residency.OwnerReads
	s, err := b.restore(context.Background(), ad, "r0", adapter.AdoptOptions{})
	if err != nil || len(s.History) != 1 || s.History[0] != "on a" {
		t.Fatalf("the event's restore of r0: %+v %v, want the history A wrote", s, err)
	}
	if n := ad.Stats().Residency.OwnerReads - reads; n != 0 {
		t.Fatalf("the event read r0 back from Cassandra (%d ownership reads): want the takeover's state", n)
	}
	tx.Restore(s)
	tx.Rollback()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := b.get("/v1/sessions/r0"); r.Status != 200 || r.num("version") != 2 {
		t.Fatalf("r0 after the race: %d %s", r.Status, r.Raw)
	}
}

// afterDeath starts node <prefix>-a (the binary, lease TTL 2 s) and node
// <prefix>-b (in process, with opts) on a fresh keyspace, creates session
// on A with one history entry ("on a"), lets A flush it and SIGKILLs A: its
// lease then runs out by itself. It returns B.
func afterDeath(t *testing.T, prefix, session string, opts Options) *testNode {
	t.Helper()
	ks := cassandratest.Keyspace(t)
	a, cmd := startBinary(t, prefix+"-a", ks, "HOLDOVER_LEASE_TTL=2s", "HOLDOVER_FLUSH_DELAY=20ms")
	cfg := testConfig(t, prefix+"-b", ks)
	cfg.LeaseTTL = 2 * time.Second
	b := startNodeWith(t, cfg, opts)
	a.must(session, `{"type":"create","attrs":{"n":"x"}}`)
	a.must(session, `{"type":"append","entry":"on a"}`)
	time.Sleep(300 * time.Millisecond) // A flushes both
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	return b
}
