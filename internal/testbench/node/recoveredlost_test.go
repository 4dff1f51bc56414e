package node

import (
	"testing"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// OnRecovered names the fenced sessions peers took meanwhile, and the
// adapter asks the host to drop them if it still holds them. The node
// ignored the list, relying on OnFenced's eviction; but a session can be
// made resident again between the two (a takeover's restore that straddles
// the fence), and the node then served a session another node owns. Found
// by review.
func TestRecoveryDropsTheSessionsPeersTook(t *testing.T) {
	n := startNode(t, testConfig(t, "recovered-lost", cassandratest.Keyspace(t)))
	n.must("kept", `{"type":"create"}`)
	n.must("taken", `{"type":"create"}`)
	n.onRecovered([]string{"taken"})
	n.evicting.Wait()
	if n.table.Get("taken") != nil {
		t.Error("a session OnRecovered reported lost is still resident")
	}
	if n.table.Get("kept") == nil {
		t.Error("a session OnRecovered did not name was dropped")
	}
}
