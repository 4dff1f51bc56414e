package buffer

import (
	"sync/atomic"
	"time"
)

// The durability window's bound. A change is lost in a crash unless its flush
// has completed, so its exposure is the time from the first unflushed change of
// its session to the end of that session's flush. With Config.MaxWindow set,
// a watchdog predicts every tick the exposure of a change committed now: the
// age of the oldest unflushed change in the buffer (flying ones included), at
// least Delay, plus the longest FlushFunc call of about the last window
// (MaxWindow, between 100 ms and 1 s; older calls say little of the flushes
// to come, and remembering a single slow one for longer refused every commit
// long after flushes were fast again). While that exceeds
// MaxWindow, flushes cannot keep up (a backlog, a slow
// or unreachable store) and a change accepted now would likely wait longer than
// MaxWindow, so Commit and End refuse with ErrOverloaded. The refusal lifts
// once the prediction is back under three quarters of MaxWindow. The check costs the
// commit path one atomic load.

// windowGuard is the state of the watchdog.
type windowGuard struct {
	max        int64 // MaxWindow in nanoseconds; 0: off
	tick       time.Duration
	span       int64       // how long a FlushFunc call counts: MaxWindow, within 100 ms..1 s (ns)
	overloaded atomic.Bool // Commit and End refuse while set
	// The longest FlushFunc call in the current and the previous span.
	flightCur, flightPrev atomic.Int64
	rotated               int64 // buffer time of the last rotation (watchdog only)
	trips                 atomic.Uint64
}

// flew records the duration of one FlushFunc (or GroupFlush) call.
func (w *windowGuard) flew(d time.Duration) {
	for cur := w.flightCur.Load(); int64(d) > cur && !w.flightCur.CompareAndSwap(cur, int64(d)); cur = w.flightCur.Load() {
	}
}

// flight is the longest call of the last one to two spans.
func (w *windowGuard) flight() int64 { return max(w.flightCur.Load(), w.flightPrev.Load()) }

// startWatchdog arms the first check; each check arms the next until Close.
func (b *Buffer) startWatchdog() {
	if b.window.max == 0 {
		return
	}
	b.clock.AfterFunc(b.window.tick, b.checkWindow)
}

// checkWindow sets or clears the overload flag, then arms the next check.
func (b *Buffer) checkWindow() {
	select {
	case <-b.stop:
		return
	default:
	}
	now := b.now()
	w := &b.window
	if now-w.rotated >= w.span {
		w.flightPrev.Store(w.flightCur.Swap(0))
		w.rotated = now
	}
	// A change committed now waits at least Delay, or as long as the oldest
	// unwritten one already did, and then one flight.
	age := int64(0)
	if oldest, found := b.oldestPending(); found {
		age = now - oldest
	}
	exposure := max(age, b.delay) + w.flight()
	switch {
	case exposure > w.max && !w.overloaded.Load():
		w.overloaded.Store(true)
		w.trips.Add(1)
		b.overloadChanged(true, age, w.flight())
	case exposure < w.max/4*3 && w.overloaded.Load():
		w.overloaded.Store(false)
		b.overloadChanged(false, age, w.flight())
	}
	b.clock.AfterFunc(w.tick, b.checkWindow)
}

// oldestPending returns the buffer time of the oldest unflushed change.
func (b *Buffer) oldestPending() (int64, bool) {
	oldest, found := int64(0), false
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		if t, ok := sh.oldest.min(); ok && (!found || t < oldest) {
			oldest, found = t, true
		}
		sh.mu.Unlock()
	}
	return oldest, found
}

// overloadChanged tells Config.OnOverload that refusing started or stopped.
func (b *Buffer) overloadChanged(on bool, oldest, flight int64) {
	if b.cfg.OnOverload != nil {
		b.cfg.OnOverload(on, time.Duration(oldest), time.Duration(flight))
	}
}
