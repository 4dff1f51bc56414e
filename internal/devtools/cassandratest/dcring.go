package cassandratest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Ring is a running Cassandra cluster of more than one data center.
type Ring struct {
	// DCs are the data centers, sorted by name; Hosts the addresses of each
	// one's nodes. Port is the CQL port of every node.
	DCs   []string
	Hosts map[string][]string
	Port  int
}

var (
	dcOnce  sync.Once
	dcRing  Ring
	dcErr   error
	dcAdmin *gocql.Session
)

// DCRing returns a cluster of at least two data centers, starting the local
// three-node ring in two data centers (`cassandra.sh start 3 --dcs 2`: dc1
// on 127.0.0.11 and 127.0.0.13, dc2 on 127.0.0.12; a running one is reused)
// unless HOLDOVER_CASSANDRA_DC_HOSTS names the contact points of an existing
// one (port HOLDOVER_CASSANDRA_PORT). It runs beside the single node Hosts
// starts. When no such cluster can be reached the test fails, never skips.
// The ring is left running, as Hosts leaves its node; `make test-dc` stops
// what it started.
func DCRing(t testing.TB) Ring {
	t.Helper()
	dcOnce.Do(startDCRing)
	if dcErr != nil {
		t.Fatalf("a Cassandra ring of two data centers is required for this test and could not start: %v", dcErr)
	}
	return dcRing
}

func startDCRing() {
	port, err := envPort()
	if err != nil {
		dcErr = err
		return
	}
	contact := []string{"127.0.0.11", "127.0.0.12"}
	if h := os.Getenv("HOLDOVER_CASSANDRA_DC_HOSTS"); h != "" {
		contact = strings.Split(h, ",")
	} else if err := runScript("start", "3", "--dcs", "2"); err != nil {
		dcErr = err
		return
	}
	c := cluster(contact, port)
	c.Timeout = 60 * time.Second // schema changes are slow on small nodes
	s, err := c.CreateSession()
	if err != nil {
		dcErr = fmt.Errorf("connect to %v:%d: %v", contact, port, err)
		return
	}
	// The driver learns every node's data center from system.local and
	// system.peers when it connects.
	r := Ring{Hosts: map[string][]string{}, Port: port}
	for _, h := range s.GetHosts() {
		r.Hosts[h.DataCenter()] = append(r.Hosts[h.DataCenter()], h.ConnectAddress().String())
	}
	for _, hs := range r.Hosts {
		slices.Sort(hs)
	}
	r.DCs = slices.Sorted(maps.Keys(r.Hosts))
	if len(r.DCs) < 2 {
		s.Close()
		dcErr = fmt.Errorf("the cluster at %v:%d has data centers %v, want at least two", contact, port, r.Hosts)
		return
	}
	dcRing, dcAdmin = r, s
}

// Keyspace creates a keyspace on the ring with the given replication map
// (such as {'class': 'NetworkTopologyStrategy', 'dc1': 2, 'dc2': 1}) for this
// test alone, and drops it when the test ends.
func (r Ring) Keyspace(t testing.TB, replication string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	if err := dcAdmin.Query(fmt.Sprintf("CREATE KEYSPACE %s WITH replication = %s", name, replication)).Exec(); err != nil {
		t.Fatalf("create keyspace %s with replication %s: %v", name, replication, err)
	}
	t.Cleanup(func() {
		if err := dcAdmin.Query("DROP KEYSPACE IF EXISTS " + name).Exec(); err != nil {
			t.Errorf("drop keyspace %s: %v", name, err)
		}
	})
	return name
}
