package node

import (
	"context"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/store"
)

// TestUnsetEvent: an unset event removes attributes, in memory and in
// Cassandra, and counts as one version; malformed unset events are refused.
func TestUnsetEvent(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	a := startNode(t, testConfig(t, "node-a", ks))
	a.must("u", `{"type":"create","attrs":{"x":"1","y":"2","z":"3"}}`)
	if v := a.must("u", `{"type":"unset","keys":["x","missing"]}`).num("version"); v != 2 {
		t.Fatalf("unset: version %d", v)
	}
	g := a.get("/v1/sessions/u")
	if attrs := g.Body["attrs"].(map[string]any); len(attrs) != 2 || attrs["x"] != nil || attrs["y"] != "2" {
		t.Fatalf("after unset: %s", g.Raw)
	}
	flushNode(t, a)
	p, err := a.Adapter().Peek(t.Context(), "u")
	if err != nil {
		t.Fatal(err)
	}
	if m := p.Map(); m["attr/x"] != nil || string(m["attr/y"]) != "2" || string(m["meta/version"]) != "2" {
		t.Fatalf("persisted after unset: %v", m)
	}
	for _, c := range []struct{ body, fragment string }{
		{`{"type":"unset"}`, "needs keys"},
		{`{"type":"unset","keys":["a"],"attrs":{"a":"b"}}`, "takes no attrs"},
		{`{"type":"unset","keys":[""]}`, "attribute name is empty"},
		{`{"type":"update","attrs":{"a":"b"},"keys":["a"]}`, "takes no keys"},
	} {
		expect(t, c.body, a.event("u", c.body), 400, c.fragment)
	}
}

// TestForcedAdoption: GET ?adopt=true&force=true adopts a session whose owner
// is alive; force alone is refused; &from=X forces it only away from X.
func TestForcedAdoption(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	a := startNode(t, testConfig(t, "node-a", ks))
	b := startNode(t, testConfig(t, "node-b", ks))
	a.must("f", `{"type":"create","attrs":{"on":"a"}}`)
	flushNode(t, a)
	if r := b.get("/v1/sessions/f?adopt=true"); r.Status != 409 || r.str("owner") != "node-a" {
		t.Fatalf("unforced adoption of a live node's session: %d %s", r.Status, r.Raw)
	}
	expect(t, "force without adopt", b.get("/v1/sessions/f?force=true"), 400, "needs adopt=true")
	expect(t, "force not a boolean", b.get("/v1/sessions/f?adopt=true&force=maybe"), 400, "not a boolean")
	expect(t, "from without force", b.get("/v1/sessions/f?adopt=true&from=node-a"), 400, "needs force=true")
	// Forced away from a node that does not own it: the live owner is named.
	if r := b.get("/v1/sessions/f?adopt=true&force=true&from=node-gone"); r.Status != 409 || r.str("owner") != "node-a" {
		t.Fatalf("adoption forced from node-gone of node-a's session: %d %s", r.Status, r.Raw)
	}
	r := b.get("/v1/sessions/f?adopt=true&force=true&from=node-a")
	if r.Status != 200 || r.Body["adopted"] != true || r.num("version") != 1 || r.str("node") != "node-b" {
		t.Fatalf("forced adoption: %d %s", r.Status, r.Raw)
	}
	if r := b.get("/v1/sessions/f?adopt=true&force=true"); r.Status != 200 || r.Body["adopted"] != false {
		t.Fatalf("forced adoption of a resident session: %d %s", r.Status, r.Raw)
	}
}

// A session whose node died between recording it and its first write has
// an ownership row and no state: adopting it finds nothing durable, which
// is a 404 like a session never recorded (the overload scenario met it as
// a 503, "persisted state has no meta/version item"), and it can be
// created afresh.
func TestRecordedButUnwrittenSessionIsNotFound(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	b := startNode(t, testConfig(t, "node-b", ks))
	hosts, port := cassandratest.Hosts(t)
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{Hosts: hosts, Port: port, Keyspace: ks})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ok, _, err := st.CreateOwner(ctx, "unwritten", "dead-node", 0, time.Hour); err != nil || !ok {
		t.Fatalf("record the session for a dead node: %v %v", ok, err)
	}
	expect(t, "adoption of a recorded, unwritten session", b.get("/v1/sessions/unwritten?adopt=true"), 404, "none of its state was written")
	b.must("unwritten", `{"type":"create","attrs":{"on":"b"}}`)
	if r := b.get("/v1/sessions/unwritten"); r.Status != 200 || r.num("version") != 1 {
		t.Fatalf("created afresh: %d %s", r.Status, r.Raw)
	}
}
