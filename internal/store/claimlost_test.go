package store

import (
	"context"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// A claim whose request failed without applying (it timed out; the serial
// read that settles it finds the row unchanged, at the owner and epoch the
// claim expected) is an error to retry, not a claim lost to a concurrent
// claimant. Reported lost, it named the row's owner, here the claimant's own
// node, as the winner: on a ring whose replica had just died, a node's flush
// took that for "adopted elsewhere", a permanent error, and dropped the eight
// acknowledged changes of a new session it owned.
func TestAClaimThatDidNotApplyIsAnErrorNotALostRace(t *testing.T) {
	hosts, port := cassandratest.Hosts(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ks := cassandratest.Keyspace(t)
	setup, err := Open(ctx, Options{Hosts: hosts, Port: port, Keyspace: ks, CreateSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	if created, _, err := setup.CreateOwner(ctx, "s", "n1", 0, time.Hour); err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	prev, found, err := setup.ReadOwner(ctx, "s")
	if err != nil || !found {
		t.Fatalf("read: %+v %v %v", prev, found, err)
	}

	st, dd := openFaulty(t, ks, 500*time.Millisecond)
	// Warm up: prepare the claim, so that the dropped request is the
	// claim itself (a claim of another session, which does not apply).
	if _, _, err := st.Claim(ctx, "warm", Owner{Node: "nobody", Epoch: 1}, "n1", time.Hour); err != nil {
		t.Fatal(err)
	}
	dd.dropping.Store(true)
	time.AfterFunc(200*time.Millisecond, func() { dd.dropping.Store(false) }) // before the 500 ms timeout
	won, cur, err := st.Claim(ctx, "s", prev, "n1", time.Hour)
	t.Logf("claim whose request was dropped: won=%v cur=%+v err=%v", won, cur, err)
	if won {
		t.Fatal("a claim that never reached Cassandra reported won")
	}
	if err == nil {
		t.Fatalf("a claim that did not apply reported lost to the row's owner %q at epoch %d, the very row it expected; want the timeout", cur.Node, cur.Epoch)
	}
	if isPermanent(err) {
		t.Fatalf("the claim's failure is permanent (%v): want one its caller retries", err)
	}
	after, _, err := setup.ReadOwnerSerial(ctx, "s")
	if err != nil || after.Node != "n1" || after.Epoch != 1 {
		t.Fatalf("the row after the dropped claim: %+v %v; want n1 at epoch 1, unchanged", after, err)
	}
}
