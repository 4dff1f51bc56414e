//go:build dcring

// These tests need a Cassandra ring of two data centers, which takes three
// more JVMs than the rest of the suite: `make test-dc` runs them (it starts
// the ring, cassandratest.DCRing, and stops it if it started it). They fail,
// never skip, when the ring cannot start.

package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/store"
)

// twoDCs is the ring's first two data centers and a replication map with two
// replicas in the first (one if it has a single node) and one in the second.
func twoDCs(r cassandratest.Ring) (dc1, dc2, replication string) {
	dc1, dc2 = r.DCs[0], r.DCs[1]
	return dc1, dc2, fmt.Sprintf("{'class': 'NetworkTopologyStrategy', '%s': %d, '%s': 1}", dc1, min(2, len(r.Hosts[dc1])), dc2)
}

// openIn opens a store on keyspace through the nodes of data center dc, as a
// node in dc would (LocalDC set), with the adapter's name for the setting.
func openIn(t *testing.T, r cassandratest.Ring, dc, keyspace string, serial gocql.Consistency, createSchema bool) (*store.Store, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, store.Options{
		Hosts:                r.Hosts[dc],
		Port:                 r.Port,
		LocalDC:              dc,
		Keyspace:             keyspace,
		CreateSchema:         createSchema,
		SerialConsistency:    serial,
		SerialConsistencyVar: "HOLDOVER_SERIAL_CONSISTENCY",
	})
	if err == nil {
		t.Cleanup(st.Close)
	}
	return st, err
}

func mustOpenIn(t *testing.T, r cassandratest.Ring, dc, keyspace string, serial gocql.Consistency, createSchema bool) *store.Store {
	t.Helper()
	st, err := openIn(t, r, dc, keyspace, serial, createSchema)
	if err != nil {
		t.Fatalf("open store in %s at serial consistency %v: %v", dc, serial, err)
	}
	return st
}

// Open picks SERIAL by default on a keyspace replicated to two data
// centers, refuses LOCAL_SERIAL there from either data center (naming the
// setting and the data centers), and accepts LOCAL_SERIAL on a keyspace
// whose replicas are all in one data center of the same ring.
func TestTwoDCsSerialConsistencyAtOpen(t *testing.T) {
	r := cassandratest.DCRing(t)
	dc1, dc2, replication := twoDCs(r)
	t.Logf("ring: %v; keyspace replication %s", r.Hosts, replication)
	keyspace := r.Keyspace(t, replication)
	for i, dc := range []string{dc1, dc2} {
		st := mustOpenIn(t, r, dc, keyspace, 0, i == 0)
		if got := st.SerialConsistency(); got != gocql.Serial {
			t.Errorf("store in %s picked %v by default, want SERIAL", dc, got)
		}
	}
	for _, dc := range []string{dc1, dc2} {
		_, err := openIn(t, r, dc, keyspace, gocql.LocalSerial, false)
		var se *store.SerialConsistencyError
		if !errors.Is(err, store.ErrLocalSerialAcrossDCs) || !errors.As(err, &se) {
			t.Fatalf("open in %s at LOCAL_SERIAL: %v, want ErrLocalSerialAcrossDCs", dc, err)
		}
		if !slices.Equal(se.DCs, []string{dc1, dc2}) || se.Keyspace != keyspace || se.Strategy != "NetworkTopologyStrategy" {
			t.Errorf("refusal names data centers %v, keyspace %q, strategy %q; want [%s %s], %q, NetworkTopologyStrategy",
				se.DCs, se.Keyspace, se.Strategy, dc1, dc2, keyspace)
		}
		for _, want := range []string{"HOLDOVER_SERIAL_CONSISTENCY=LOCAL_SERIAL is unsafe", dc1 + ", " + dc2, "HOLDOVER_SERIAL_CONSISTENCY=SERIAL"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q does not say %q", err, want)
			}
		}
		t.Logf("open in %s at LOCAL_SERIAL: %v", dc, err)
	}

	// SimpleStrategy places replicas regardless of data centers.
	simple := r.Keyspace(t, "{'class': 'SimpleStrategy', 'replication_factor': 2}")
	_, err := openIn(t, r, dc1, simple, gocql.LocalSerial, false)
	if !errors.Is(err, store.ErrLocalSerialAcrossDCs) || !strings.Contains(err.Error(), "SimpleStrategy ignores data centers") {
		t.Errorf("open at LOCAL_SERIAL on a SimpleStrategy keyspace across two data centers: %v, want a refusal", err)
	}

	// All replicas in dc1: LOCAL_SERIAL and SERIAL consult the same replicas.
	local := r.Keyspace(t, fmt.Sprintf("{'class': 'NetworkTopologyStrategy', '%s': %d}", dc1, min(2, len(r.Hosts[dc1]))))
	st := mustOpenIn(t, r, dc1, local, gocql.LocalSerial, false)
	if got := st.SerialConsistency(); got != gocql.LocalSerial {
		t.Errorf("LOCAL_SERIAL on a one-data-center keyspace: the store uses %v", got)
	}
}

// outcome is what one claimant's Claim returned.
type outcome struct {
	won  bool
	told string // the owner a loser was told of
	err  error
}

// race creates session from creator and has every node of claimants[i]
// claim it through stores[i] at once. It returns each claimant's outcome.
func race(ctx context.Context, t *testing.T, creator *store.Store, session string, stores []*store.Store, claimants [][]string) map[string]outcome {
	t.Helper()
	created, _, err := creator.CreateOwner(ctx, session, "origin", 0, time.Hour)
	if err != nil || !created {
		t.Fatalf("create owner of %s: created=%v err=%v", session, created, err)
	}
	prev := store.Owner{Node: "origin", Epoch: 1}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		out  = map[string]outcome{}
		gate = make(chan struct{})
	)
	for i, st := range stores {
		for _, node := range claimants[i] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				won, cur, err := st.Claim(ctx, session, prev, node, time.Hour)
				mu.Lock()
				defer mu.Unlock()
				out[node] = outcome{won: won, told: cur.Node, err: err}
			}()
		}
	}
	close(gate)
	wg.Wait()
	return out
}

// winners are the claimants whose Claim reported the win.
func winners(out map[string]outcome) []string {
	var w []string
	for node, o := range out {
		if o.won {
			w = append(w, node)
		}
	}
	slices.Sort(w)
	return w
}

// claimants names n claimants per data center: dc1-0, dc1-1, ..., dc2-0, ...
func claimants(n int, dcs ...string) [][]string {
	var out [][]string
	for _, dc := range dcs {
		var names []string
		for i := range n {
			names = append(names, fmt.Sprintf("%s-%d", dc, i))
		}
		out = append(out, names)
	}
	return out
}

// Claimants in both data centers race for each of many sessions, through
// stores at the default serial consistency (SERIAL): exactly one wins each
// round, and both data centers then read the winner at the new epoch. A
// loser is told the winner or, when its own attempt failed (a contention
// timeout) and the serial read that settled it ran before the winner's claim
// was decided, the row as it was before the race; never another claimant.
func TestTwoDCsClaimExactlyOneWinner(t *testing.T) {
	r := cassandratest.DCRing(t)
	dc1, dc2, replication := twoDCs(r)
	keyspace := r.Keyspace(t, replication)
	a := mustOpenIn(t, r, dc1, keyspace, 0, true)
	b := mustOpenIn(t, r, dc2, keyspace, 0, false)
	if a.SerialConsistency() != gocql.Serial || b.SerialConsistency() != gocql.Serial {
		t.Fatalf("serial consistency %v in %s, %v in %s; want SERIAL", a.SerialConsistency(), dc1, b.SerialConsistency(), dc2)
	}
	const rounds, perDC = 100, 4
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	began := time.Now()
	failed := 0    // claims that ended in an error; they must not have won
	early := 0     // losers told the row before the race (their attempt failed and was settled early)
	undecided := 0 // rounds in which every claim failed and none was decided
	for round := range rounds {
		session := fmt.Sprintf("race-%d", round)
		creator := a
		if round%2 == 1 {
			creator = b
		}
		out := race(ctx, t, creator, session, []*store.Store{a, b}, claimants(perDC, dc1, dc2))
		won := winners(out)
		if len(won) > 1 {
			t.Fatalf("round %d: %d winners %v", round, len(won), won)
		}
		// Both data centers read one row: the winner at epoch 2, or, if no
		// claim was decided (each failed, or was settled as lost before any
		// was decided), still the origin at epoch 1.
		var rows [2]store.Owner
		for i, st := range []*store.Store{a, b} {
			o, found, err := st.ReadOwnerSerial(ctx, session)
			if err != nil || !found {
				t.Fatalf("round %d: read in %s: found=%v err=%v", round, []string{dc1, dc2}[i], found, err)
			}
			rows[i] = o
		}
		winner := rows[0].Node
		if rows[0].Node != rows[1].Node || rows[0].Epoch != rows[1].Epoch {
			t.Fatalf("round %d: %s reads %s@%d, %s reads %s@%d", round, dc1, rows[0].Node, rows[0].Epoch, dc2, rows[1].Node, rows[1].Epoch)
		}
		if winner == "origin" && rows[0].Epoch == 1 && len(won) == 0 {
			undecided++
			continue
		}
		// The row's owner is a claimant at epoch 2 that was not told it
		// lost; every loser was told of it or, when its attempt failed and
		// the serial read that settled it ran before any claim was decided,
		// of the row before the race, never of another claimant.
		o, ok := out[winner]
		if !ok || rows[0].Epoch != 2 || (len(won) == 1 && won[0] != winner) || (!o.won && o.err == nil) {
			t.Fatalf("round %d: both data centers read %s@%d; winners %v; outcomes %+v", round, winner, rows[0].Epoch, won, out)
		}
		for node, o := range out {
			switch {
			case o.err != nil:
				failed++
			case o.won:
			case o.told == winner:
			case o.told == "origin":
				early++
			default:
				t.Fatalf("round %d: %s was told %q won, the winner was %q", round, node, o.told, winner)
			}
		}
	}
	t.Logf("%d rounds of %d claimants in each of %s and %s at SERIAL in %s (%d claims failed with an error, %d losers were told the row before the race, %d rounds undecided)",
		rounds, perDC, dc1, dc2, time.Since(began).Round(time.Millisecond), failed, early, undecided)
	if undecided > rounds/10 {
		t.Errorf("%d of %d rounds had no claim decided", undecided, rounds)
	}
}

// The hazard SERIAL removes, shown on the same ring: stores opened at
// LOCAL_SERIAL while the keyspace lived in dc1 only (Open accepts that) keep
// LOCAL_SERIAL when the keyspace is then extended to dc2, and from then on
// claimants in dc1 and dc2 run separate Paxos rounds, so a session can get
// two owners. This also shows the claim race above could see two winners.
func TestTwoDCsLocalSerialCanDoubleClaim(t *testing.T) {
	r := cassandratest.DCRing(t)
	dc1, dc2, replication := twoDCs(r)
	keyspace := r.Keyspace(t, fmt.Sprintf("{'class': 'NetworkTopologyStrategy', '%s': %d}", dc1, min(2, len(r.Hosts[dc1]))))
	a := mustOpenIn(t, r, dc1, keyspace, gocql.LocalSerial, true)
	b := mustOpenIn(t, r, dc2, keyspace, gocql.LocalSerial, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := a.Session().Query(fmt.Sprintf("ALTER KEYSPACE %s WITH replication = %s", keyspace, replication)).ExecContext(ctx); err != nil {
		t.Fatalf("extend keyspace to %s: %v", dc2, err)
	}
	if _, err := openIn(t, r, dc2, keyspace, gocql.LocalSerial, false); !errors.Is(err, store.ErrLocalSerialAcrossDCs) {
		t.Fatalf("reopen at LOCAL_SERIAL after the keyspace reached %s: %v, want a refusal", dc2, err)
	}
	// About one round in ten has two winners on the local ring; the test
	// stops at the third.
	const maxRounds, perDC, enough = 300, 4, 3
	doubled, round := 0, 0
	for ; round < maxRounds && doubled < enough; round++ {
		won := winners(race(ctx, t, a, fmt.Sprintf("race-%d", round), []*store.Store{a, b}, claimants(perDC, dc1, dc2)))
		if len(won) > 1 {
			doubled++
			t.Logf("round %d: winners %v", round, won)
		}
	}
	t.Logf("LOCAL_SERIAL across %s and %s: %d of %d rounds had more than one winner", dc1, dc2, doubled, round)
	if doubled == 0 {
		t.Errorf("no round had two winners at LOCAL_SERIAL across data centers: the race cannot tell SERIAL from LOCAL_SERIAL on this ring")
	}
}
