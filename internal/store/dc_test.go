package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

func TestReplicaDCs(t *testing.T) {
	nts := "org.apache.cassandra.locator.NetworkTopologyStrategy"
	ring := []string{"dc2", "dc1", "dc1", ""}
	for _, tc := range []struct {
		name        string
		replication map[string]string
		ring        []string
		strategy    string
		dcs         []string
	}{
		{"NTS two DCs", map[string]string{"class": nts, "dc1": "2", "dc2": "1"}, ring, "NetworkTopologyStrategy", []string{"dc1", "dc2"}},
		{"NTS one DC of two", map[string]string{"class": nts, "dc1": "3"}, ring, "NetworkTopologyStrategy", []string{"dc1"}},
		{"NTS zero replicas", map[string]string{"class": nts, "dc1": "3", "dc2": "0"}, ring, "NetworkTopologyStrategy", []string{"dc1"}},
		{"NTS transient", map[string]string{"class": nts, "dc1": "3/1", "dc2": "2/1"}, ring, "NetworkTopologyStrategy", []string{"dc1", "dc2"}},
		{"NTS unreadable count", map[string]string{"class": nts, "dc1": "3", "dc2": "x"}, ring, "NetworkTopologyStrategy", []string{"dc1", "dc2"}},
		{"NTS short class", map[string]string{"class": "NetworkTopologyStrategy", "dc1": "1", "dc2": "1"}, nil, "NetworkTopologyStrategy", []string{"dc1", "dc2"}},
		{"Simple on two DCs", map[string]string{"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "1"}, ring, "SimpleStrategy", []string{"dc1", "dc2"}},
		{"Simple on one DC", map[string]string{"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "3"}, []string{"datacenter1"}, "SimpleStrategy", []string{"datacenter1"}},
		{"Local", map[string]string{"class": "org.apache.cassandra.locator.LocalStrategy"}, ring, "LocalStrategy", nil},
		{"unknown strategy", map[string]string{"class": "com.example.EverywhereStrategy"}, ring, "EverywhereStrategy", []string{"dc1", "dc2"}},
	} {
		strategy, dcs := replicaDCs(tc.replication, tc.ring)
		if strategy != tc.strategy || !slices.Equal(dcs, tc.dcs) {
			t.Errorf("%s: replicaDCs = %s %v, want %s %v", tc.name, strategy, dcs, tc.strategy, tc.dcs)
		}
	}
}

func TestSerialConsistencyErrorText(t *testing.T) {
	e := &SerialConsistencyError{Setting: "HOLDOVER_SERIAL_CONSISTENCY", Level: gocql.LocalSerial, Keyspace: "sessions",
		Strategy: "NetworkTopologyStrategy", DCs: []string{"dc1", "dc2"}}
	want := `HOLDOVER_SERIAL_CONSISTENCY=LOCAL_SERIAL is unsafe for keyspace "sessions": its replicas are in data centers dc1, dc2 ` +
		`(NetworkTopologyStrategy), and LOCAL_SERIAL decides ownership claims in each data center separately, so nodes in two ` +
		`of them could both adopt one session; use HOLDOVER_SERIAL_CONSISTENCY=SERIAL`
	if e.Error() != want {
		t.Errorf("error text\n%s\nwant\n%s", e.Error(), want)
	}
	if !errors.Is(e, ErrLocalSerialAcrossDCs) || !e.Permanent() {
		t.Errorf("errors.Is(ErrLocalSerialAcrossDCs) = %v, permanent = %v; want both", errors.Is(e, ErrLocalSerialAcrossDCs), e.Permanent())
	}
	e.Strategy = "SimpleStrategy"
	if got := e.Error(); !strings.Contains(got, "can be in any of data centers dc1, dc2 (SimpleStrategy ignores data centers)") {
		t.Errorf("SimpleStrategy error text: %s", got)
	}
	bad := &SerialConsistencyError{Setting: "SerialConsistency", Level: gocql.Quorum, Keyspace: "sessions"}
	if got := bad.Error(); got != "SerialConsistency=QUORUM is not a serial consistency level: use SERIAL or LOCAL_SERIAL" || errors.Is(bad, ErrLocalSerialAcrossDCs) {
		t.Errorf("non-serial level: %q, Is(ErrLocalSerialAcrossDCs) = %v", got, errors.Is(bad, ErrLocalSerialAcrossDCs))
	}
}

// On the single-node test cluster (one data center) the default is SERIAL,
// LOCAL_SERIAL is accepted, and a level that is not serial is refused. The
// two-data-center cases run on their own ring: dcring_test.go, make test-dc.
func TestSerialConsistencyOnOneDataCenter(t *testing.T) {
	t.Parallel()
	hosts, port := cassandratest.Hosts(t)
	keyspace := cassandratest.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		set, want gocql.Consistency
	}{
		{0, gocql.Serial},
		{gocql.Serial, gocql.Serial},
		{gocql.LocalSerial, gocql.LocalSerial},
	} {
		st, err := Open(ctx, Options{Hosts: hosts, Port: port, Keyspace: keyspace, CreateSchema: tc.set == 0, SerialConsistency: tc.set})
		if err != nil {
			t.Fatalf("open with serial consistency %v: %v", tc.set, err)
		}
		if got := st.SerialConsistency(); got != tc.want {
			t.Errorf("open with serial consistency %v: the store uses %v, want %v", tc.set, got, tc.want)
		}
		if _, _, err := st.ReadOwnerSerial(ctx, "s"); err != nil {
			t.Errorf("serial read at %v: %v", tc.want, err)
		}
		st.Close()
	}
	_, err := Open(ctx, Options{Hosts: hosts, Port: port, Keyspace: keyspace, SerialConsistency: gocql.Quorum, SerialConsistencyVar: "HOLDOVER_SERIAL_CONSISTENCY"})
	var se *SerialConsistencyError
	if !errors.As(err, &se) || se.Level != gocql.Quorum || !strings.Contains(err.Error(), "HOLDOVER_SERIAL_CONSISTENCY=QUORUM") {
		t.Errorf("open with serial consistency QUORUM: %v, want a *SerialConsistencyError naming HOLDOVER_SERIAL_CONSISTENCY=QUORUM", err)
	}
}
