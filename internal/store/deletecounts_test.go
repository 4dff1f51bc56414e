package store

import (
	"fmt"
	"testing"
)

// The delete counts are bounded (maxDeleteCounts sessions). A session near
// RebaseDeletes keeps its count when more sessions than the bound delete
// items meanwhile: its next delete writes it whole. The counts used to be
// forgotten all at once when the bound was reached, so on a node with more
// deleting sessions than that, a session's count started afresh every time
// the others filled the map again, and its tombstones grew past Cassandra's
// tombstone_failure_threshold without it ever being written whole.
func TestASessionNearTheBoundKeepsItsDeleteCountPastMaxDeleteCounts(t *testing.T) {
	st := &Store{opts: Options{RebaseDeletes: 10}}
	del := func(session string, n int) *Write {
		w := &Write{Session: session, Epoch: 1, Seq: 10}
		for i := range n {
			w.Items = append(w.Items, Item{Key: fmt.Sprintf("k%d", i), Delete: true})
		}
		return w
	}
	st.counted(del("hot", 9))
	if !st.rebaseDue(del("hot", 1)) {
		t.Fatal("9 deletes and 1 more of RebaseDeletes 10 not due: the test proves nothing")
	}
	for i := range maxDeleteCounts {
		st.counted(del(fmt.Sprintf("other-%d", i), 1))
	}
	if n := len(st.deletes.m); n > maxDeleteCounts {
		t.Fatalf("%d sessions counted, over the bound %d", n, maxDeleteCounts)
	}
	if !st.rebaseDue(del("hot", 1)) {
		t.Fatalf("after %d other sessions deleted an item each, hot's 9 deletes of 10 were forgotten: its next delete is not written whole", maxDeleteCounts)
	}
}
