package node

import (
	"context"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// docs/node-api.md: create answers 409 when the session is owned by a live
// peer; the create race is limited to creates "before either has recorded
// it". Here A recorded (and flushed) the session well before B's create; B
// had only looked the ID up a moment before (a 404), and its negative cache
// answered the create's lookup: B acknowledged the create (200), then
// dropped it as owned elsewhere. A create now looks in Cassandra
// (AdoptOptions.Fresh). Found by review.
func TestACreateAfterAPeerRecordedTheSessionIsRefused(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	a := startNode(t, testConfig(t, "create-after-a", ks))
	b := startNode(t, testConfig(t, "create-after-b", ks))

	expect(t, "B looks the ID up first", b.get("/v1/sessions/dup?adopt=true"), 404)
	a.must("dup", `{"type":"create","attrs":{"on":"a"}}`)
	flushNode(t, a)
	time.Sleep(100 * time.Millisecond)
	if _, err := a.Adapter().Peek(context.Background(), "dup"); err != nil {
		t.Fatalf("A's session not recorded: %v", err)
	}

	r := b.event("dup", `{"type":"create","attrs":{"on":"b"}}`)
	if r.Status != 409 {
		t.Errorf("create on B after A recorded it: %d %s, want 409 naming A", r.Status, r.Raw)
	}
	if r.Status == 200 {
		flushNode(t, b)
		time.Sleep(200 * time.Millisecond)
		p, err := b.Adapter().Peek(context.Background(), "dup")
		t.Logf("persisted: owner %v, items %v, err %v", p.Owner, p.Map(), err)
		g := b.get("/v1/sessions/dup")
		t.Errorf("create on B acknowledged (200) although live node A recorded the session before it; "+
			"B's session is not persisted (owner %q), B now: %d %s", p.Owner, g.Status, g.Raw)
	}
}
