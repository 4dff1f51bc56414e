package node

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

func TestEventsEndToEnd(t *testing.T) {
	t.Parallel()
	a := startNode(t, testConfig(t, "node-a", cassandratest.Keyspace(t)))

	r := a.must("call-1", `{"type":"create","attrs":{"caller":"alice","callee":"bob"}}`)
	if r.str("session") != "call-1" || r.str("node") != "node-a" || r.num("version") != 1 || r.Body["adopted"] != false {
		t.Fatalf("create: %s", r.Raw)
	}
	if v := a.must("call-1", `{"type":"update","attrs":{"state":"ringing"}}`).num("version"); v != 2 {
		t.Fatalf("update: version %d", v)
	}
	a.must("call-1", `{"type":"append","entry":"INVITE"}`)
	if v := a.must("call-1", `{"type":"append","entry":"200 OK"}`).num("version"); v != 4 {
		t.Fatalf("append: version %d", v)
	}
	a.must("call-1", `{"type":"update","attrs":{"state":"up"}}`)

	g := a.get("/v1/sessions/call-1")
	if g.Status != 200 || g.num("version") != 5 || g.Body["resident"] != true || g.str("node") != "node-a" {
		t.Fatalf("get: %d %s", g.Status, g.Raw)
	}
	attrs, _ := g.Body["attrs"].(map[string]any)
	hist, _ := g.Body["history"].([]any)
	if len(attrs) != 3 || attrs["state"] != "up" || attrs["caller"] != "alice" || len(hist) != 2 || hist[1] != "200 OK" {
		t.Fatalf("get: %s", g.Raw)
	}
	if i := a.get("/v1/info"); i.str("node") != "node-a" || i.num("flush_delay_ms") != 20 || i.num("sessions") != 1 || !strings.HasPrefix(i.str("keyspace"), "t_") {
		t.Fatalf("info: %s", i.Raw)
	}
	expect(t, "create of a resident session", a.event("call-1", `{"type":"create"}`), 409, "already exists")

	// The persisted items follow the documented layout.
	flushNode(t, a)
	p, err := a.Adapter().Peek(context.Background(), "call-1")
	if err != nil {
		t.Fatal(err)
	}
	m := p.Map()
	want := map[string]string{"meta/version": "5", "attr/caller": "alice", "attr/callee": "bob", "attr/state": "up",
		"hist/00000000": "INVITE", "hist/00000001": "200 OK"}
	if len(m) != len(want) {
		t.Fatalf("persisted %d items, want %d: %v", len(m), len(want), m)
	}
	for k, v := range want {
		if string(m[k]) != v {
			t.Fatalf("persisted %s = %q, want %q", k, m[k], v)
		}
	}

	// End removes it here and in Cassandra.
	if v := a.must("call-1", `{"type":"end"}`).num("version"); v != 6 {
		t.Fatalf("end: version %d", v)
	}
	expect(t, "get after end", a.get("/v1/sessions/call-1"), 404, "not resident")
	// Before the end is flushed (the adapter still owns the session) and after.
	expect(t, "update after end", a.event("call-1", `{"type":"append","entry":"late"}`), 404, `session "call-1" not found`)
	flushNode(t, a)
	expect(t, "get ?adopt after end", a.get("/v1/sessions/call-1?adopt=true"), 404, "not found")
	if _, err := a.Adapter().Peek(context.Background(), "call-1"); err == nil {
		t.Fatal("ended session still persisted")
	}

	// The ID can be reused: a fresh session.
	r = a.must("call-1", `{"type":"create","attrs":{"caller":"carol"}}`)
	g = a.get("/v1/sessions/call-1")
	if r.num("version") != 1 || g.num("version") != 1 || len(g.Body["history"].([]any)) != 0 || len(g.Body["attrs"].(map[string]any)) != 1 {
		t.Fatalf("re-created: %s", g.Raw)
	}

	// Events of unknown sessions.
	expect(t, "update of an unknown session", a.event("nobody", `{"type":"update","attrs":{"a":"b"}}`), 404, `session "nobody" not found`)
	expect(t, "get of an unknown session", a.get("/v1/sessions/nobody"), 404)
	expect(t, "get ?adopt of an unknown session", a.get("/v1/sessions/nobody?adopt=true"), 404, "not found")
	if a.Table().Len() != 1 {
		t.Fatalf("%d sessions resident, want 1", a.Table().Len())
	}

	// Session IDs are path segments: escaped characters are part of them.
	a.must("sip%2Fcall%3Fx", `{"type":"create"}`)
	if g := a.get("/v1/sessions/sip%2Fcall%3Fx"); g.str("session") != "sip/call?x" {
		t.Fatalf("escaped ID: %s", g.Raw)
	}
}

func TestAdoptionOnSecondNode(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	a := startNode(t, testConfig(t, "node-a", ks))
	b := startNode(t, testConfig(t, "node-b", ks))
	c := startNode(t, testConfig(t, "node-c", ks))

	for _, id := range []string{"s1", "s2", "s3"} {
		a.must(id, `{"type":"create","attrs":{"owner":"a"}}`)
		a.must(id, `{"type":"append","entry":"on a"}`)
	}
	flushNode(t, a)

	// A is alive: the others refuse, naming it.
	r := b.event("s1", `{"type":"update","attrs":{"x":"y"}}`)
	expect(t, "update of a live peer's session", r, 409, "node-a")
	if r.str("owner") != "node-a" {
		t.Fatalf("409 without the owner: %s", r.Raw)
	}
	if r := b.event("s1", `{"type":"create"}`); r.Status != 409 || r.str("owner") != "node-a" {
		t.Fatalf("create of a live peer's session: %d %s", r.Status, r.Raw)
	}
	if r := b.get("/v1/sessions/s1?adopt=true"); r.Status != 409 || r.str("owner") != "node-a" {
		t.Fatalf("get ?adopt of a live peer's session: %d %s", r.Status, r.Raw)
	}
	expect(t, "get without adopt", b.get("/v1/sessions/s1"), 404, "not resident")

	// A shuts down gracefully: it releases its sessions, so B adopts at once.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := a.Close(ctx)
	if err != nil || rep.Released != 3 || len(rep.Unwritten.Sessions) != 0 {
		t.Fatalf("close a: %+v %v", rep, err)
	}
	expect(t, "event on a closed node", a.event("s1", `{"type":"append","entry":"x"}`), 503)
	if r := a.get("/readyz"); r.Status != 503 {
		t.Fatalf("readyz of a closed node: %d", r.Status)
	}

	r = b.must("s1", `{"type":"append","entry":"on b"}`)
	if r.Body["adopted"] != true || r.num("version") != 3 || r.str("node") != "node-b" {
		t.Fatalf("adopting append: %s", r.Raw)
	}
	if r := b.must("s1", `{"type":"update","attrs":{"owner":"b"}}`); r.Body["adopted"] != false || r.num("version") != 4 {
		t.Fatalf("second event: %s", r.Raw)
	}
	g := b.get("/v1/sessions/s1")
	if h := g.Body["history"].([]any); len(h) != 2 || h[0] != "on a" || h[1] != "on b" || g.Body["attrs"].(map[string]any)["owner"] != "b" {
		t.Fatalf("adopted state: %s", g.Raw)
	}
	g = b.get("/v1/sessions/s2?adopt=true")
	if g.Status != 200 || g.Body["adopted"] != true || g.num("version") != 2 {
		t.Fatalf("get ?adopt: %d %s", g.Status, g.Raw)
	}
	if r := b.event("s2", `{"type":"create"}`); r.Status != 409 || r.str("owner") != "node-b" {
		t.Fatalf("create of an adopted session: %d %s", r.Status, r.Raw)
	}

	// Now B owns s1: C is refused with B's name.
	if r := c.event("s1", `{"type":"append","entry":"x"}`); r.Status != 409 || r.str("owner") != "node-b" {
		t.Fatalf("event on c for b's session: %d %s", r.Status, r.Raw)
	}

	// B and C race for s3: exactly one adopts it, the other learns who did.
	var wg sync.WaitGroup
	replies := make([]reply, 2)
	for i, n := range []*testNode{b, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = n.event("s3", fmt.Sprintf(`{"type":"append","entry":"from %s"}`, n.NodeID()))
		}()
	}
	wg.Wait()
	won := slices.IndexFunc(replies, func(r reply) bool { return r.Status == 200 })
	if won < 0 || replies[1-won].Status != 409 || replies[1-won].str("owner") != replies[won].str("node") {
		t.Fatalf("race for s3: %d %s / %d %s", replies[0].Status, replies[0].Raw, replies[1].Status, replies[1].Raw)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "node-a", cassandratest.Keyspace(t))
	cfg.MaxSessionIDBytes, cfg.MaxKeyBytes, cfg.MaxValueBytes = 16, 32, 64
	a := startNode(t, cfg)
	a.must("s", `{"type":"create","attrs":{"k":"v"}}`)

	long := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name, path, body string
		status           int
		fragments        []string
	}{
		{"malformed JSON", "s", `{"type":`, 400, []string{"malformed JSON"}},
		{"not an object", "s", `["update"]`, 400, []string{"malformed JSON"}},
		{"trailing data", "s", `{"type":"end"} {}`, 400, []string{"malformed JSON"}},
		{"wrong field type", "s", `{"type":"update","attrs":{"k":1}}`, 400, []string{"malformed JSON"}},
		{"unknown type", "s", `{"type":"delete"}`, 400, []string{`unknown event type "delete"`}},
		// Named as unknown, not as a type that takes no keys (found by review).
		{"unknown type with keys", "s", `{"type":"delete","keys":["a"]}`, 400, []string{`unknown event type "delete"`}},
		{"missing type", "s", `{}`, 400, []string{"unknown event type"}},
		{"update without attrs", "s", `{"type":"update"}`, 400, []string{"needs attrs"}},
		{"append without entry", "s", `{"type":"append"}`, 400, []string{"needs an entry"}},
		{"end with attrs", "s", `{"type":"end","attrs":{"a":"b"}}`, 400, []string{"takes no attrs"}},
		{"long session ID", long(17), `{"type":"create"}`, 400, []string{"session ID is 17 bytes", "16", "HOLDOVER_MAX_SESSION_ID_BYTES"}},
		{"empty session ID", "", `{"type":"create"}`, 400, []string{"session ID is empty", "HOLDOVER_MAX_SESSION_ID_BYTES"}},
		{"long attribute name", "s", `{"type":"update","attrs":{"` + long(28) + `":"v"}}`, 400, []string{"attribute name", "28 bytes", "limit of 27", "HOLDOVER_MAX_KEY_BYTES"}},
		{"empty attribute name", "s", `{"type":"update","attrs":{"":"v"}}`, 400, []string{"attribute name is empty", "HOLDOVER_MAX_KEY_BYTES"}},
		{"long value", "s", `{"type":"update","attrs":{"k":"` + long(65) + `"}}`, 400, []string{`value of attribute "k" is 65 bytes`, "64", "HOLDOVER_MAX_VALUE_BYTES"}},
		{"long entry", "s", `{"type":"append","entry":"` + long(65) + `"}`, 400, []string{"entry is 65 bytes", "64", "HOLDOVER_MAX_VALUE_BYTES"}},
		{"create with long value", "t", `{"type":"create","attrs":{"k":"` + long(65) + `"}}`, 400, []string{"HOLDOVER_MAX_VALUE_BYTES"}},
		{"oversized body", "s", `{"type":"append","entry":"` + long(1<<20+100) + `"}`, 413, []string{"request body over the limit of 1048640 bytes"}},
	}
	for _, c := range cases {
		r := a.event(c.path, c.body)
		expect(t, c.name, r, c.status, c.fragments...)
	}
	expect(t, "get of a long ID", a.get("/v1/sessions/"+long(17)), 400, "HOLDOVER_MAX_SESSION_ID_BYTES")
	expect(t, "get with a bad adopt flag", a.get("/v1/sessions/s?adopt=maybe"), 400, "adopt")
	if r := a.do("GET", "/v1/sessions/s/events", ""); r.Status != http.StatusMethodNotAllowed {
		t.Fatalf("GET on events: %d", r.Status)
	}
	// At the limits exactly, everything is accepted.
	a.must(long(16), `{"type":"create","attrs":{"`+long(27)+`":"`+long(64)+`"}}`)
	a.must(long(16), `{"type":"append","entry":"`+long(64)+`"}`)

	// None of the refused events touched the session.
	g := a.get("/v1/sessions/s")
	if g.num("version") != 1 || len(g.Body["attrs"].(map[string]any)) != 1 || len(g.Body["history"].([]any)) != 0 {
		t.Fatalf("state after refused events: %s", g.Raw)
	}
	if a.Table().Len() != 2 {
		t.Fatalf("%d resident sessions, want 2", a.Table().Len())
	}
}

func TestRefusedCommitLeavesStateUntouched(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	cfg := testConfig(t, "node-a", ks)
	cfg.FlushDelay = time.Hour
	cfg.MaxPendingBytes = adapter.MiB
	a := startNode(t, cfg)

	// A commit that does not fit the 1 MiB of pending bytes is refused
	// whole. (Above half the cap the buffer flushes at once, so the refused
	// events are each over the cap on their own.)
	big := strings.Repeat("b", 600<<10)
	a.must("s1", `{"type":"create","attrs":{"k":"v"}}`)
	a.must("s1", `{"type":"update","attrs":{"big":"`+big+`"}}`)
	before := a.get("/v1/sessions/s1").Raw

	for name, body := range map[string]string{
		"update": `{"type":"update","attrs":{"k":"changed","m1":"` + big + `","m2":"` + big + `"}}`,
		"append": `{"type":"append","entry":"` + strings.Repeat("e", 1<<20) + `"}`,
	} {
		r := a.event("s1", body)
		expect(t, name+" over the pending cap", r, 503, "buffer")
		if r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: 503 without Retry-After", name)
		}
		if after := a.get("/v1/sessions/s1").Raw; after != before {
			t.Fatalf("refused %s changed the session:\n%s\n%s", name, before[:300], after[:min(len(after), 300)])
		}
	}
	expect(t, "create over the pending cap", a.event("s2", `{"type":"create","attrs":{"m1":"`+big+`","m2":"`+big+`"}}`), 503, "buffer")
	expect(t, "the refused create", a.get("/v1/sessions/s2"), 404)
	if a.Table().Len() != 1 {
		t.Fatalf("%d resident sessions, want 1", a.Table().Len())
	}
	// Small events still fit.
	if v := a.must("s1", `{"type":"append","entry":"small"}`).num("version"); v != 3 {
		t.Fatalf("version after refused events = %d, want 3", v)
	}

	// Nothing accepted is lost: Close writes it, and a peer adopts exactly it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if rep, err := a.Close(ctx); err != nil || len(rep.Unwritten.Sessions) != 0 {
		t.Fatalf("close: %+v %v", rep, err)
	}
	b := startNode(t, testConfig(t, "node-b", ks))
	g := b.get("/v1/sessions/s1?adopt=true")
	attrs, _ := g.Body["attrs"].(map[string]any)
	if g.num("version") != 3 || attrs["k"] != "v" || attrs["big"] != big || len(attrs) != 2 || len(g.Body["history"].([]any)) != 1 {
		t.Fatalf("adopted after close: %s", g.Raw[:min(len(g.Raw), 300)])
	}
	expect(t, "refused create on the peer", b.event("s2", `{"type":"append","entry":"x"}`), 404)
}

func TestFencedSessionsAreReadopted(t *testing.T) {
	t.Parallel()
	a := startNode(t, testConfig(t, "node-a", cassandratest.Keyspace(t)))
	a.must("s1", `{"type":"create","attrs":{"k":"v"}}`)
	flushNode(t, a) // the adapter owns s1 once its first flush recorded it
	a.must("s1", `{"type":"append","entry":"e"}`)

	// The adapter reports a fence (as when the lease could not be renewed):
	// the node stops being ready and drops the session from memory.
	a.onFenced([]string{"s1"})
	if r := a.get("/readyz"); r.Status != 503 || !strings.Contains(r.str("error"), "fenced") {
		t.Fatalf("readyz while fenced: %d %s", r.Status, r.Raw)
	}
	a.evicting.Wait()
	expect(t, "get of a dropped session", a.get("/v1/sessions/s1"), 404)

	// The lease is back and s1 was kept: the next event restores it from
	// what the adapter holds, pending changes included.
	a.onRecovered(nil)
	if r := a.get("/readyz"); r.Status != 200 {
		t.Fatalf("readyz after recovery: %d %s", r.Status, r.Raw)
	}
	r := a.must("s1", `{"type":"append","entry":"f"}`)
	g := a.get("/v1/sessions/s1")
	if r.Body["adopted"] != true || r.num("version") != 3 || len(g.Body["history"].([]any)) != 2 {
		t.Fatalf("after recovery: %s / %s", r.Raw, g.Raw)
	}
}

func TestProbesAndMetrics(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "node-a", cassandratest.Keyspace(t))

	// Before Open: alive, not ready, events refused.
	idle := New(cfg, Options{})
	tn := &testNode{Node: idle, t: t}
	srv := httptestServer(t, idle)
	tn.url = srv
	if r := tn.get("/healthz"); r.Status != 200 {
		t.Fatalf("healthz before open: %d", r.Status)
	}
	if r := tn.get("/readyz"); r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("readyz before open: %d", r.Status)
	}
	expect(t, "event before open", tn.event("s", `{"type":"create"}`), 503, "not ready")

	a := startNode(t, cfg)
	if r := a.get("/readyz"); r.Status != 200 || r.str("node") != "node-a" {
		t.Fatalf("readyz: %d %s", r.Status, r.Raw)
	}
	a.must("s", `{"type":"create"}`)
	a.event("s", `{"type":"nope"}`)
	flushNode(t, a)
	m := a.get("/metrics")
	for _, want := range []string{
		`holdover_node_events_total{adopted="false",status="200",type="create"} 1`,
		`holdover_node_events_total{adopted="false",status="400",type="invalid"} 1`,
		"holdover_node_sessions 1",
		"holdover_flush_duration_milliseconds_bucket",
		"go_goroutines",
	} {
		if !strings.Contains(m.Raw, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	a.Drain()
	if r := a.get("/readyz"); r.Status != 503 || !strings.Contains(r.str("error"), "draining") {
		t.Fatalf("readyz while draining: %d %s", r.Status, r.Raw)
	}
	if r := a.get("/healthz"); r.Status != 200 {
		t.Fatalf("healthz while draining: %d", r.Status)
	}
	a.must("s", `{"type":"append","entry":"still served while draining"}`)
}
