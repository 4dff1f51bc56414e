package buffer

import (
	"math"
	"sync/atomic"
	"time"
)

// The durability window's bound. A change is lost in a crash unless its flush
// has completed, so its exposure is the time from the first unflushed change of
// its session to the end of that session's flush. With Config.MaxWindow (or a
// Family's) set, a watchdog predicts every tick the exposure of a change
// committed now to each family: the age of the family's oldest unflushed change
// (flying ones included) as it will be at the next check, a tick later (MaxWindow
// / 20, within 1..50 ms and at most a quarter of MaxWindow − Delay; the shortest
// of the families'), at least the family's Delay and at least one flight (a
// session has one write in flight at a time, so a change committed to a session
// whose write is on its way waits for it to land), plus one flight: the longest
// FlushFunc call of the family's sessions in about the last window (MaxWindow,
// between 100 ms and 1 s; older calls say little of the flushes to come, and
// remembering a single slow one for longer refused every commit long after
// flushes were fast again), or as long as its longest call under way has
// flown, if that is longer (a write slow now says more than ended ones did).
// While that exceeds the family's MaxWindow, flushes cannot keep up (a
// backlog, a slow or unreachable store) and a change accepted now would
// likely wait longer than MaxWindow, so Commit and End of the family's
// sessions refuse with ErrOverloaded. The refusal lifts once the
// prediction is back under the Delay plus three quarters of the margin above it
// (MaxWindow − Delay). Three quarters of MaxWindow itself would never be
// reached by a family whose Delay is at least that (a 1s Delay under a 1.25s
// bound): the prediction is never below the Delay, so one slow flush left the
// family refusing every commit for good.
//
// Each family is judged on its own figures: a family whose sessions wait 5s by
// design has a 5s-old change pending all the time, which says nothing about a
// 10ms family's flushes; nor does a slow flush of its large sessions. The
// check costs the commit path one atomic load while no family refuses (a count
// of the families that do), and one more, of its family's flag, while one does.

// windowGuard is the state of one family's watchdog.
type windowGuard struct {
	max        int64         // MaxWindow in nanoseconds; 0: off
	span       int64         // how long a FlushFunc call counts: MaxWindow, within 100 ms..1 s (ns)
	every      time.Duration // how often the bound wants to be checked (tick)
	overloaded atomic.Bool   // Commit and End of the family refuse while set
	// The longest FlushFunc call in the current and the previous span.
	flightCur, flightPrev atomic.Int64
	// flying is how long the family's longest write under way had flown at
	// the last check (0: none).
	flying  atomic.Int64
	rotated int64 // buffer time of the last rotation (watchdog only)
	trips   atomic.Uint64
	// late counts the family's writes that landed more than max after their
	// oldest change: changes acknowledged that a crash just before the write
	// landed would have lost beyond the bound.
	late atomic.Uint64
}

// init sets the bound of a family whose Delay is delay; maxWindow 0 leaves it
// off.
func (w *windowGuard) init(maxWindow, delay time.Duration) {
	w.max = int64(maxWindow)
	w.span = int64(min(max(maxWindow, 100*time.Millisecond), time.Second))
	w.every = min(max(maxWindow/20, time.Millisecond), 50*time.Millisecond, max((maxWindow-delay)/4, time.Millisecond))
}

// tick is how often the bound wants to be checked: a twentieth of it, within
// 1..50 ms, and at most a quarter of the margin it leaves above the Delay. The
// prediction adds a tick (the next check's), so a tick close to the margin
// refused every commit of a family whose bound is its Delay plus a little.
func (w *windowGuard) tick() time.Duration { return w.every }

// flew records the duration of one FlushFunc (or GroupFlush) call.
func (w *windowGuard) flew(d time.Duration) {
	for cur := w.flightCur.Load(); int64(d) > cur && !w.flightCur.CompareAndSwap(cur, int64(d)); cur = w.flightCur.Load() {
	}
}

// flight is the longest call of the last one to two spans.
func (w *windowGuard) flight() int64 { return max(w.flightCur.Load(), w.flightPrev.Load()) }

// callSlot is one flush worker's write under way, as the watchdog sees it: a
// write that has flown for 200 ms will take at least that, and so may the
// next, however short the writes that ended lately were. Ended writes alone
// told nothing at the onset of a stall, nor after a refusal long enough to
// forget every flight, and the changes accepted then waited through it.
type callSlot struct {
	start atomic.Int64     // buffer time the write began; read only while fams is not 0
	fams  [2]atomic.Uint64 // bit f: the write carries a session of family f; 0: idle
}

// takeCallLocked gives a new worker a slot, -1 when no family has a bound.
// b.mu is held; a worker returns its slot when it exits, and at most
// Concurrency run.
func (b *Buffer) takeCallLocked() int32 {
	n := len(b.freeCalls)
	if n == 0 {
		return -1
	}
	c := b.freeCalls[n-1]
	b.freeCalls = b.freeCalls[:n-1]
	return c
}

// flying shows the write of f, begun at t0, in call, and reports whether it
// did: not when no family has a bound (call nil), nor for f's family when it
// has none, nor for a session not yet prepared (Config.Prepared), whose
// write starts with a preparation (a new session's ownership record) that the
// flight leaves out (Snapshot.Prep): the caller bounds that by other means.
func (b *Buffer) flying(call *callSlot, f *flight, t0 time.Time) bool {
	fam := f.s.fam
	if call == nil || b.fams[fam].window.max == 0 || (b.cfg.Prepared != nil && !b.cfg.Prepared(f.s.id)) {
		return false
	}
	call.start.Store(int64(t0.Sub(b.base)))
	call.fams[fam/64].Or(1 << (fam % 64))
	return true
}

// landed shows call idle.
func (c *callSlot) landed() {
	c.fams[0].Store(0)
	c.fams[1].Store(0)
}

// flyingFor fills dst (one entry per family) with how long the longest write
// under way of each family has flown at now, 0 where none is, and returns it.
func (b *Buffer) flyingFor(dst []int64, now int64) []int64 {
	clear(dst)
	for i := range b.calls {
		c := &b.calls[i]
		m := [2]uint64{c.fams[0].Load(), c.fams[1].Load()}
		if m[0]|m[1] == 0 {
			continue
		}
		d := now - c.start.Load()
		for f := range dst {
			if m[f/64]&(1<<(f%64)) != 0 {
				dst[f] = max(dst[f], d)
			}
		}
	}
	return dst
}

// startWatchdog arms the first check; each check arms the next until Close.
func (b *Buffer) startWatchdog() {
	if b.watchTick == 0 {
		return
	}
	b.clock.AfterFunc(b.watchTick, b.checkWindow)
}

// checkWindow sets or clears each family's overload flag, then arms the next
// check.
func (b *Buffer) checkWindow() {
	select {
	case <-b.stop:
		return
	default:
	}
	now := b.now()
	oldest := b.oldestPending(b.watchOldest)
	flying := b.flyingFor(b.watchFlying, now)
	for f := range b.fams {
		fam := &b.fams[f]
		w := &fam.window
		if w.max == 0 {
			continue
		}
		if now-w.rotated >= w.span {
			w.flightPrev.Store(w.flightCur.Swap(0))
			w.rotated = now
		}
		// A change committed now waits at least the family's Delay, or as long
		// as its oldest unwritten one already did, and then one flight. A
		// session has one write in flight at a time, so a change committed
		// to a session whose write is on its way waits for that write to
		// land, up to a flight, before its own starts: two flights when they
		// are longer than the Delay. The prediction stands until the next
		// check, a tick later, and the oldest change ages meanwhile: it is
		// judged as it will be then.
		age, aged := int64(0), int64(0)
		if oldest[f] != math.MaxInt64 {
			age = now - oldest[f]
			aged = age + int64(b.watchTick)
		}
		w.flying.Store(flying[f])
		flight := max(w.flight(), flying[f])
		exposure := max(aged, fam.delay, flight) + flight
		switch {
		case exposure > w.max && !w.overloaded.Load():
			w.overloaded.Store(true)
			b.overloadedFams.Add(1)
			w.trips.Add(1)
			b.overloadChanged(fam, true, age, flight)
		case exposure < fam.delay+(w.max-fam.delay)/4*3 && w.overloaded.Load():
			w.overloaded.Store(false)
			b.overloadedFams.Add(-1)
			b.overloadChanged(fam, false, age, flight)
		}
	}
	b.clock.AfterFunc(b.watchTick, b.checkWindow)
}

// oldestPending fills dst (one entry per family) with the buffer time of each
// family's oldest unflushed change, math.MaxInt64 where it has none, and
// returns it.
func (b *Buffer) oldestPending(dst []int64) []int64 {
	for f := range dst {
		dst[f] = math.MaxInt64
	}
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		for f := range sh.fams {
			if t, ok := sh.fams[f].oldest.min(); ok && t < dst[f] {
				dst[f] = t
			}
		}
		sh.mu.Unlock()
	}
	return dst
}

// overloadChanged tells Config.OnOverload and OnFamilyOverload that a family
// started or stopped refusing.
func (b *Buffer) overloadChanged(fam *family, on bool, oldest, flight int64) {
	if b.cfg.OnOverload != nil {
		b.cfg.OnOverload(on, time.Duration(oldest), time.Duration(flight))
	}
	if b.cfg.OnFamilyOverload != nil {
		b.cfg.OnFamilyOverload(fam.name, on, time.Duration(oldest), time.Duration(flight))
	}
}

// RecentFlight is the longest write (FlushFunc or GroupFlush call, less its
// Snapshot.Prep) of session's family in about the last window, or as long as
// its longest write under way had flown at the watchdog's last check if that
// is longer: the flight the family's MaxWindow bound predicts with. 0 when the
// family has no bound or no write ended lately or is under way.
func (b *Buffer) RecentFlight(session string) time.Duration {
	w := &b.fams[b.match(session)].window
	if w.max == 0 {
		return 0
	}
	return time.Duration(max(w.flight(), w.flying.Load()))
}
