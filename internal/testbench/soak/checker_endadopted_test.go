package soak

import "testing"

// A acknowledged versions 2 and 3 and
// never failed; the End it is sent later is answered adopted=true at
// version 2: A had lost the session from memory and restored version 1
// from Cassandra before ending it, so versions 2 and 3, acknowledged with no
// failure to excuse them, were never persisted (I1). The End's answer is the
// only observation of that restoration (the workload reads nothing after an
// End); before, resolvePending skipped ends, so nothing was reported.
func TestEndAdoptedAtAnOlderVersionIsALoss(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.update("s", "A", 100, "k", "1")
	b.update("s", "A", 200, "k", "2")
	seq := b.end("s", "A", 10000)
	b.recs[seq-1].Version, b.recs[seq-1].Adopted = 2, true // 1 restored + the End
	b.final("s", 20000, &Observed{Found: false, Ended: true})
	expect(t, Check(b.recs), map[string]int{I1: 1, "lost_beyond_window": 1})
}
