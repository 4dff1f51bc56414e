package soak

import (
	"testing"
)

// an event answered adopted=true
// whose node restored exactly the state the workload believed (the read
// that follows confirms it) proves that state was persisted. A later
// adoption showing an older one lost a state restored from Cassandra
// earlier: I1 (doc.go: "one restored from Cassandra earlier"). An explicit
// adoption restoring it marks it durable; before, resolvePending returned
// "as assumed" without doing so, and with every acknowledgement excused by
// a failure nothing was reported.
func TestImplicitAdoptionRestoresDurably(t *testing.T) {
	for _, implicit := range []bool{false, true} {
		b := newBuilder()
		b.create("s", "A", 0)
		b.update("s", "A", 4900, "k", "1") // v2, acknowledged 90ms before A fenced itself
		b.fault(FaultSelfFence, "A", 5000)
		if implicit {
			// A dropped s and adopts it again on the next event: it restores
			// v2 from Cassandra and applies the update (v3, adopted=true).
			seq := b.update("s", "A", 8000, "k", "2")
			b.recs[seq-1].Adopted = true
			b.add(Record{Type: RecOp, Session: "s", Kind: OpRead, Node: "A", Start: b.at(8020), End: b.at(8021),
				Outcome: OutObserved, Obs: b.obs("s", 3, false)})
		} else {
			b.adopt("s", OpAdopt, "A", "A", 7980, 2) // the same restoration, explicit
			b.update("s", "A", 8000, "k", "2")
		}
		b.fault(FaultKill, "A", 8100)             // v3 is within the window: excused
		b.adopt("s", OpAdopt, "B", "A", 12000, 1) // v2, persisted and restored at 8000, is gone
		t.Logf("implicit=%v", implicit)
		expect(t, Check(b.recs), map[string]int{I1: 1, "lost_beyond_window": 1})
	}
}
