package buffer

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// Report lists the state Close could not write.
type Report struct {
	// Sessions holds one entry per session with unflushed state, sorted by ID. It is
	// empty when Close drained everything.
	Sessions []Unwritten
	// Items is the total of Sessions[i].Items.
	Items int
}

// Unwritten is one session Close left unwritten.
type Unwritten struct {
	Session string
	// Items is the number of pending items (latest change per key) not written.
	Items int
	// Ended reports that an End of the session was not written either.
	Ended bool
	// Err is the last transient error of the session's flush, or nil if none failed.
	Err error
}

// Pause stops the buffer from starting flushes; flushes in flight finish. Commits are
// still accepted up to MaxPendingBytes. A host uses it when it may no longer write
// (its lease lapsed), then Resume or Discard.
func (b *Buffer) Pause() {
	b.mu.Lock()
	b.paused = true
	b.mu.Unlock()
}

// Resume undoes Pause: overdue sessions are flushed at once.
func (b *Buffer) Resume() {
	b.mu.Lock()
	b.paused = false
	b.mu.Unlock()
	b.kickNow()
}

// Refuse makes every later commit fail with ErrClosed, as Close does first;
// what was committed before stays pending until Close drains it. A caller
// closing several buffers side by side refuses commits to all of them
// before it drains any.
func (b *Buffer) Refuse() {
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		sh.closed = true
		sh.mu.Unlock()
	}
}

// Close refuses new commits (ErrClosed), drains everything committed so far and stops
// the buffer. It honours Pause: a paused buffer is not drained until Resume (so a node
// that must not write does not), and Close then waits for ctx.
//
// When ctx ends before the drain completes, Close cancels the context of the
// FlushFunc calls in flight, waits for them to return, and reports every session it
// could not write, with ctx's error. Snapshots dropped after permanent errors are not
// in the Report: they went to OnDrop. Close is idempotent: later calls wait for the
// first (or for their own ctx) and return its result.
func (b *Buffer) Close(ctx context.Context) (Report, error) {
	if !b.closing.CompareAndSwap(false, true) {
		select {
		case <-b.closedCh:
			return b.report, b.closeErr
		case <-ctx.Done():
			return Report{}, ctx.Err()
		}
	}
	b.Refuse()
	w := b.expedite()
	var err error
	select {
	case <-w.done:
	case <-ctx.Done():
		select {
		case <-w.done: // drained as ctx ended: nothing is left unwritten
		default:
			err = fmt.Errorf("buffer: close: %w", ctx.Err())
		}
	}
	b.mu.Lock()
	b.stopping = true
	b.mu.Unlock()
	b.cancelFlights()
	close(b.stop)
	<-b.loopDone
	b.workers.Wait()

	b.report = b.unwritten()
	b.closeErr = err
	close(b.closedCh)
	return b.report, b.closeErr
}

// unwritten lists the sessions with unflushed state. No flush runs any more.
func (b *Buffer) unwritten() Report {
	var r Report
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		for _, s := range sh.sessions {
			r.Sessions = append(r.Sessions, Unwritten{Session: s.id, Items: s.items.n, Ended: s.ended, Err: s.lastErr})
			r.Items += s.items.n
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(r.Sessions, func(x, y Unwritten) int { return cmp.Compare(x.Session, y.Session) })
	return r
}
