package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Serial consistency and data centers.
//
// A lightweight transaction runs Paxos among the replicas of its partition:
// at SERIAL among all of them, at LOCAL_SERIAL among those in the
// coordinator's data center only. When a keyspace has replicas in two data
// centers, a claim coordinated in one and a claim coordinated in the other
// therefore reach disjoint majorities, and both can win: two owners of one
// session. When every replica sits in one data center, the two levels consult
// exactly the same replicas, so SERIAL costs nothing there. That is why
// SERIAL is the default, and why Open accepts LOCAL_SERIAL only after finding
// the keyspace's replicas in a single data center.
//
// Open checks once. A data center added to the keyspace's replication later
// makes a store still running at LOCAL_SERIAL unsafe until it is reopened
// (and refused); a store at SERIAL stays safe through such a change.

// ErrLocalSerialAcrossDCs marks Open's refusal of LOCAL_SERIAL for a keyspace
// whose replicas are in more than one data center; the *SerialConsistencyError
// that carries it names the data centers.
var ErrLocalSerialAcrossDCs = errors.New("LOCAL_SERIAL with replicas in more than one data center")

// SerialConsistencyError is Open's refusal of a serial consistency level.
type SerialConsistencyError struct {
	// Setting names the option as the user sets it (Options.SerialConsistencyVar).
	Setting string
	// Level is the level refused.
	Level gocql.Consistency
	// Keyspace is the keyspace checked; Strategy its replication class
	// (short name); DCs the data centers that hold or may hold its replicas,
	// sorted. DCs is empty when Level is not a serial level at all.
	Keyspace string
	Strategy string
	DCs      []string
}

func (e *SerialConsistencyError) Error() string {
	if len(e.DCs) < 2 {
		return fmt.Sprintf("%s=%s is not a serial consistency level: use SERIAL or LOCAL_SERIAL", e.Setting, e.Level)
	}
	where := fmt.Sprintf("its replicas are in data centers %s (%s)", strings.Join(e.DCs, ", "), e.Strategy)
	if e.Strategy != "NetworkTopologyStrategy" {
		where = fmt.Sprintf("its replicas can be in any of data centers %s (%s ignores data centers)", strings.Join(e.DCs, ", "), e.Strategy)
	}
	return fmt.Sprintf("%s=LOCAL_SERIAL is unsafe for keyspace %q: %s, and LOCAL_SERIAL decides ownership claims "+
		"in each data center separately, so nodes in two of them could both adopt one session; use %s=SERIAL",
		e.Setting, e.Keyspace, where, e.Setting)
}

// Unwrap makes errors.Is(err, ErrLocalSerialAcrossDCs) true for a refusal
// because of data centers.
func (e *SerialConsistencyError) Unwrap() error {
	if len(e.DCs) < 2 {
		return nil
	}
	return ErrLocalSerialAcrossDCs
}

// Permanent reports that reopening with the same options cannot succeed.
func (e *SerialConsistencyError) Permanent() bool { return true }

// SerialConsistency is the level of the store's lightweight transactions and
// serial reads: Options.SerialConsistency, or SERIAL when that was zero.
func (st *Store) SerialConsistency() gocql.Consistency { return st.opts.SerialConsistency }

// checkSerialLevel refuses a level other than SERIAL and LOCAL_SERIAL.
func (o Options) checkSerialLevel() error {
	if o.SerialConsistency != gocql.Serial && o.SerialConsistency != gocql.LocalSerial {
		return &SerialConsistencyError{Setting: o.SerialConsistencyVar, Level: o.SerialConsistency, Keyspace: o.Keyspace}
	}
	return nil
}

// checkSerialConsistency refuses LOCAL_SERIAL when the keyspace's replicas
// are in more than one data center, as the keyspace's replication
// (system_schema) and the data centers of the hosts the driver knows tell.
func checkSerialConsistency(ctx context.Context, s *gocql.Session, o Options) error {
	if o.SerialConsistency != gocql.LocalSerial {
		return nil
	}
	var replication map[string]string
	// Unquoted names, as the store's are, are folded to lower case.
	err := s.Query(`SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?`, strings.ToLower(o.Keyspace)).
		Consistency(gocql.One).ScanContext(ctx, &replication)
	if err != nil {
		return wrap("read replication of keyspace "+o.Keyspace, "", err)
	}
	var ring []string
	for _, h := range s.GetHosts() {
		ring = append(ring, h.DataCenter())
	}
	strategy, dcs := replicaDCs(replication, ring)
	if len(dcs) > 1 {
		return &SerialConsistencyError{Setting: o.SerialConsistencyVar, Level: o.SerialConsistency, Keyspace: o.Keyspace, Strategy: strategy, DCs: dcs}
	}
	return nil
}

// replicaDCs returns the short name of a keyspace's replication class and the
// data centers that hold or may hold its replicas, sorted: under
// NetworkTopologyStrategy those given a replica count above zero; under
// LocalStrategy none (every node keeps its own copy, no two nodes ever
// agree on anything); under any other strategy, which places replicas
// without regard to data centers, every data center in ring (the data
// centers of the cluster's hosts).
func replicaDCs(replication map[string]string, ring []string) (strategy string, dcs []string) {
	class := replication["class"]
	strategy = class[strings.LastIndexByte(class, '.')+1:]
	set := map[string]bool{}
	switch strategy {
	case "NetworkTopologyStrategy":
		for dc, rf := range replication {
			if dc == "class" || dc == "replication_factor" {
				continue
			}
			// "3", or "3/1" with transient replicas.
			full, _, _ := strings.Cut(rf, "/")
			if n, err := strconv.Atoi(strings.TrimSpace(full)); err != nil || n > 0 {
				set[dc] = true
			}
		}
	case "LocalStrategy":
	default:
		for _, dc := range ring {
			if dc != "" {
				set[dc] = true
			}
		}
	}
	return strategy, slices.Sorted(maps.Keys(set))
}
