package soak

import "testing"

// A node that fenced itself at 5.0s, renewed its lease and unfenced, then
// acknowledged v2 at 5.51s (sent 500ms after the fence) and never failed
// again. A read 15s later showing v1 lost an acknowledged change of a live
// node: I1. The self-fence happened before v2 existed, so it cannot excuse
// its loss; failureGrace (meant for events sent in the lag between a
// SIGKILL/SIGSTOP and the workload learning of it) made the checker count
// it as lost within the window instead: a loss the soak did not report.
// Found by review.
func TestALossAfterARecoveredSelfFenceIsCounted(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.fault(FaultSelfFence, "A", 5000)
	b.update("s", "A", 5500, "k", "1") // v2, acknowledged at 5510 by A, unfenced again
	b.add(Record{Type: RecOp, Session: "s", Kind: OpRead, Node: "A", Start: b.at(20000), End: b.at(20001),
		Outcome: OutObserved, Obs: b.obs("s", 1, false)})
	rep := Check(b.recs)
	expect(t, rep, map[string]int{I1: 1, "lost_beyond_window": 1})
}

// Control: the same without the self-fence is reported.
func TestALossWithoutASelfFenceIsCounted(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.update("s", "A", 5500, "k", "1")
	b.add(Record{Type: RecOp, Session: "s", Kind: OpRead, Node: "A", Start: b.at(20000), End: b.at(20001),
		Outcome: OutObserved, Obs: b.obs("s", 1, false)})
	expect(t, Check(b.recs), map[string]int{I1: 1, "lost_beyond_window": 1})
}
