package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// The delete count (rebase.go) starts afresh only where a partition
// tombstone was written; it used to at any new epoch. A recovery (residency's recover) moves a session to the next
// epoch by a compare-and-set alone, with no fence: nothing shadows the
// deletes of the epoch before, and the count must go on. It used to start
// afresh: a session whose owner deleted just under RebaseDeletes items per
// epoch, across a dozen recoveries, was never written whole and passed
// Cassandra's tombstone_failure_threshold: it could no longer be read, so
// never adopted.
func TestDeletesAcrossRecoveredEpochsAreShed(t *testing.T) {
	hosts, port := cassandratest.Hosts(t)
	bg := context.Background()
	st, err := Open(bg, Options{Hosts: hosts, Port: port, Keyspace: cassandratest.Keyspace(t), CreateSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	per := DefaultRebaseDeletes - 1
	seq := uint64(10)
	if err := st.WriteSession(bg, &Write{Session: "s", Epoch: 1, Seq: seq, Items: []Item{{Key: "kept", Value: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	rebased := false
	for epoch := uint64(1); epoch <= 11; epoch++ { // each epoch after the first: a recovery's claim, no fence
		seq += 2
		items := make([]Item, 0, per)
		for i := range per {
			items = append(items, Item{Key: fmt.Sprintf("gone-%02d-%05d", epoch, i), Delete: true})
		}
		w := &Write{Session: "s", Epoch: epoch, Seq: seq, Items: items}
		rebased = rebased || st.rebaseDue(w)
		if err := st.WriteSession(bg, w); err != nil {
			t.Fatalf("epoch %d: %v", epoch, err)
		}
	}
	got, err := st.ReadState(bg, "s")
	if err != nil {
		t.Fatalf("after %d deletes over 11 epochs without a fence (written whole: %v), the session cannot be read: %v", 11*per, rebased, err)
	}
	if len(got) != 1 {
		t.Fatalf("read %d items, want 1", len(got))
	}
}

// A fence writes a partition tombstone that shadows every delete before it,
// so the count starts afresh there (an adoption's fence, a fresh start's),
// alone or in a group: the next deletes are not written whole too soon.
func TestAFenceStartsTheDeleteCountAfresh(t *testing.T) {
	hosts, port := cassandratest.Hosts(t)
	bg := context.Background()
	st, err := Open(bg, Options{Hosts: hosts, Port: port, Keyspace: cassandratest.Keyspace(t), CreateSchema: true, RebaseDeletes: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dels := func(prefix string, n int) []Item {
		items := make([]Item, n)
		for i := range items {
			items[i] = Item{Key: fmt.Sprintf("%s%02d", prefix, i), Delete: true}
		}
		return items
	}
	for _, s := range []string{"alone", "grouped-1", "grouped-2"} {
		if err := st.WriteSession(bg, &Write{Session: s, Epoch: 1, Seq: 10, Items: dels("a", 9)}); err != nil {
			t.Fatal(err)
		}
		if !st.rebaseDue(&Write{Session: s, Epoch: 1, Seq: 12, Items: dels("b", 1)}) {
			t.Fatalf("%s: 9 deletes and 1 more of RebaseDeletes 10 not due: the test proves nothing", s)
		}
	}
	if err := st.Fence(bg, "alone", 2, nil); err != nil {
		t.Fatal(err)
	}
	fs := []Fencing{{Session: "grouped-1", Epoch: 2}, {Session: "grouped-2", Epoch: 2}}
	errs := make([]error, len(fs))
	st.FenceSessions(bg, fs, errs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("fence of %s: %v", fs[i].Session, err)
		}
	}
	for _, s := range []string{"alone", "grouped-1", "grouped-2"} {
		if st.rebaseDue(&Write{Session: s, Epoch: 2, Seq: 12, Items: dels("b", 1)}) {
			t.Errorf("%s: one delete after a fence is due to be written whole: the fence did not start the count afresh", s)
		}
	}
}
