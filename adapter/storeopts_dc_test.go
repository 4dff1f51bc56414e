//go:build dcring

// Run by `make test-dc`, beside internal/store/dcring_test.go: the adapter on
// a Cassandra ring of two data centers (cassandratest.DCRing).

package adapter_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// A node whose keyspace is replicated to two data centers is refused at Open
// with HOLDOVER_SERIAL_CONSISTENCY=LOCAL_SERIAL, with an error naming the
// variable and the data centers, and opens with SERIAL.
func TestOpenTwoDCsSerialConsistency(t *testing.T) {
	r := cassandratest.DCRing(t)
	dc1, dc2 := r.DCs[0], r.DCs[1]
	dcs := map[string]int{dc1: min(2, len(r.Hosts[dc1])), dc2: 1}
	keyspace := r.Keyspace(t, fmt.Sprintf("{'class': 'NetworkTopologyStrategy', '%s': %d, '%s': %d}", dc1, dcs[dc1], dc2, dcs[dc2]))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, dc := range []string{dc1, dc2} {
		c := adapter.DefaultConfig()
		c.Hosts, c.Port, c.LocalDC = r.Hosts[dc], r.Port, dc
		c.Keyspace = keyspace
		c.ReplicationClass, c.ReplicationDCs = adapter.NetworkTopologyStrategy, dcs
		c.NodeID = "node-in-" + dc

		c.SerialConsistency = "LOCAL_SERIAL"
		a, err := adapter.Open(ctx, c)
		if err == nil {
			_, _ = a.Close(ctx)
			t.Fatalf("Open in %s with HOLDOVER_SERIAL_CONSISTENCY=LOCAL_SERIAL succeeded on a keyspace in %s and %s", dc, dc1, dc2)
		}
		want := fmt.Sprintf(`holdover: open cassandra store: HOLDOVER_SERIAL_CONSISTENCY=LOCAL_SERIAL is unsafe for keyspace %q: `+
			`its replicas are in data centers %s, %s (NetworkTopologyStrategy)`, keyspace, dc1, dc2)
		if !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "use HOLDOVER_SERIAL_CONSISTENCY=SERIAL") {
			t.Errorf("Open in %s with LOCAL_SERIAL:\n%v\nwant it to start %q and end with the fix", dc, err, want)
		}
		t.Logf("Open in %s with LOCAL_SERIAL: %v", dc, err)

		c.SerialConsistency = "SERIAL"
		a, err = adapter.Open(ctx, c)
		if err != nil {
			t.Fatalf("Open in %s with SERIAL: %v", dc, err)
		}
		if _, err := a.Close(ctx); err != nil {
			t.Errorf("Close in %s: %v", dc, err)
		}
	}
}
