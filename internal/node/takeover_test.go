package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/cassandratest"
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
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(100 * time.Millisecond) {
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
