package node

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// A create event the commit would refuse (new sessions wait while ownership
// creations cannot meet their budget) is refused before the node looks for a
// stale session under its ID: a refused burst costs Cassandra no reads. (The
// lookup came first: a burst of 1,500 new sessions a second, all refused,
// cost a read each on a Cassandra node started seconds before, starving the
// creations and first writes of the sessions admitted until a node failure
// lost them.) A window bound 1 ms above the flush delay leaves a creation
// half a millisecond, less than any lightweight transaction takes, so every
// new session is refused.
func TestRefusedCreateEventsReadNothing(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "node-a", cassandratest.Keyspace(t))
	cfg.MaxWindow = cfg.FlushDelay + time.Millisecond
	a := startNode(t, cfg)
	ad, err := a.adapter()
	if err != nil {
		t.Fatal(err)
	}
	before := ad.Stats().Residency
	for i := range 20 {
		expect(t, "a create event while new sessions wait", a.event(fmt.Sprint("new-", i), `{"type":"create"}`),
			http.StatusServiceUnavailable, "ownership creations are backed up")
	}
	after := ad.Stats().Residency
	if n := after.OwnerReads - before.OwnerReads; n != 0 {
		t.Fatalf("20 refused create events made %d ownership reads, want none", n)
	}
	if n := after.CreationRefusals - before.CreationRefusals; n != 20 {
		t.Fatalf("CreationRefusals grew by %d over 20 refused create events, want 20", n)
	}
}
