package soak

import "testing"

// an End whose answer was lost
// did land: the resync's adoption finds nothing persisted (404, after the
// negative cache's retry). The session has been seen ended in Cassandra, so
// a later observation of its state from before the End is an ended session
// coming back. Before, observe marked only found restorations durable, so
// the End seen persisted was owed by nothing and the resurrection passed.
func TestAbsenceSeenInCassandraIsOwed(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.update("s", "A", 100, "k", "1")
	b.event("s", "A", 1000, OpEnd, Event{Type: EvEnd}, OutUnknown)
	b.add(Record{Type: RecOp, Session: "s", Kind: OpRead, Node: "A", Start: b.at(1100), End: b.at(1101), Outcome: OutMiss, Status: 404})
	b.adopt("s", OpAdopt, "A", "A", 1200, 0) // 404: the End is persisted
	b.final("s", 20000, b.obs("s", 2, true)) // the state before the End is back
	expect(t, Check(b.recs), map[string]int{I4: 1, "ended_came_back": 1})
}
