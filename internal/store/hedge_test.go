package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// Hedging must never turn a slow answer from a lone node into "no hosts
// available": with a hedge delay far below any request's latency, every read
// of a single-node cluster still succeeds.
func TestHedgingOnASingleNodeNeverFailsARead(t *testing.T) {
	t.Parallel()
	hosts, port := cassandratest.Hosts(t)
	ctx := context.Background()
	st, err := Open(ctx, Options{Hosts: hosts, Port: port, Keyspace: cassandratest.Keyspace(t), CreateSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n := len(st.s.GetHosts()); n != 1 {
		t.Fatalf("this test needs a single-node cluster, the driver sees %d hosts", n)
	}
	st.hedge = &gocql.SimpleSpeculativeExecution{NumAttempts: 1, TimeoutDelay: time.Nanosecond}
	for i := 0; i < 200; i++ {
		if _, _, err := st.ReadOwner(ctx, fmt.Sprintf("s%d", i)); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if _, err := st.ReadState(ctx, fmt.Sprintf("s%d", i)); err != nil {
			t.Fatalf("state read %d: %v", i, err)
		}
	}
}
