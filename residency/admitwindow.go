package residency

import (
	"sync"
	"time"
)

// creationWindow bounds the queue of ownership creations (in flight, waiting
// for a slot, or admitted and still within their lead) a new session may be
// admitted behind, beyond what AdmitNew's estimate allows: a slow start, as
// TCP's congestion window.
//
// The estimate judges the queue in rounds of MaxConcurrentCreates at the
// latency creations took lately. But that latency was measured at the
// concurrency they ran at, and a store short of CPU takes longer per
// creation as more run at once: before the first creations end it is the
// latency of taking the lease, a single lightweight transaction. On a
// Cassandra node started seconds before, that latency admitted about 240
// new sessions per node at once, whose creations then took over three
// seconds to drain (about 400 a second, both nodes together), and a node
// failed meanwhile lost acknowledged sessions beyond their window.
//
// So the queue may grow past the window only where it would fit the budget
// even run one creation at a time (a generous budget, or a fast store), or
// would be through within half the budget at the pace creations ended over
// the last second (a pace measured, not extrapolated). The window starts at
// a quarter of MaxConcurrentCreates, or at what the default budget holds one
// creation at a time at the latency of taking the lease, if more (on a
// three-node ring whose creations took a second each, a drill's 30 s budget
// started at 16 and refused 136 to 327 create events in the first seconds,
// before any creation had ended to show a pace), grows for each creation
// that ended within half its budget while the window was at least half used
// (so it grows with the load that tests it, and not in idle periods), and
// halves, at most once a round, when one ended past its budget. A creation
// that took d shows room for budget/(2d) more, even served one at a time
// after it: the window grows by that much, at least one (doubling each
// round, as TCP's slow start, where the budget is tight; at once where it is
// generous: a host with a minute's window bound that creates thousands of
// sessions at once is not held to the pace of a slow start).
type creationWindow struct {
	mu    sync.Mutex
	size  int64         // between windowFloor and windowCeiling
	cutAt time.Duration // elapsed time of the last cut
	done  admitMeter    // creations that ended, over the last second
}

// A cut never takes the creation window below windowFloor; growth stops at
// windowCeiling (AdmitNew's rounds bound the queue long before).
const (
	windowFloor   = 4
	windowCeiling = 1 << 30
)

func newCreationWindow(slots int) *creationWindow {
	start := max(windowFloor, int64(slots)/4)
	return &creationWindow{size: start, done: admitMeter{span: time.Second}}
}

// seed widens the window to what the default budget holds one creation at a
// time at latency (taking the lease's, at Start): a node whose budget is a
// minute wide does not start as narrow as one whose budget is 125 ms. The
// window still halves from there when a creation ends past its budget.
func (w *creationWindow) seed(budget, latency time.Duration) {
	if budget <= 0 || latency <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.size = min(windowCeiling, max(w.size, int64(budget/latency)))
}

// admits reports whether a new session may queue behind queued creations at
// now: within the window, or (past it) when even one creation at a time at
// latency, the queue and its own would fit budget, or when at the pace
// creations ended over the last second they would be through within half
// of it.
func (w *creationWindow) admits(now time.Duration, queued int64, latency, budget time.Duration) bool {
	w.mu.Lock()
	size, pace := w.size, w.done.recent(now)
	w.mu.Unlock()
	return queued < size || time.Duration(queued+1)*latency <= budget ||
		float64(queued+1) <= float64(pace)*budget.Seconds()/2
}

// ended folds in one creation that ended at now, took long from its request
// to its end (waiting for a slot included), of a session with budget, with
// queued creations left in the queue.
func (w *creationWindow) ended(now, took, budget time.Duration, queued int64) {
	if budget <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done.rotate(now)
	w.done.cur++
	switch {
	case took > budget:
		if w.cutAt == 0 || now-w.cutAt >= took {
			w.size = max(windowFloor, w.size/2)
			w.cutAt = now
		}
	case took <= budget/2 && 2*(queued+1) >= w.size:
		w.size = min(windowCeiling, w.size+max(1, int64(budget/(2*max(took, 1)))))
	}
}

// current is the window's size.
func (w *creationWindow) current() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}
