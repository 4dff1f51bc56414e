package adapter

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/holdover/holdover/buffer"
)

// CloseReport says what Close could not write and how many sessions it
// released to peers. Log it: its Unwritten sessions lost changes.
type CloseReport struct {
	// Unwritten lists the sessions whose pending changes Close could not
	// write before ctx ended. Their last changes are lost unless the host
	// commits them again elsewhere; the sessions stay owned by this node and
	// become adoptable (at their last written state) when its lease expires.
	Unwritten Unwritten
	// Released counts the sessions handed over to peers, which may adopt them
	// at once without waiting for this node's lease to expire. When ctx ended
	// before every release was answered, it counts those answered by then
	// (others may have landed too).
	Released int
}

// Unwritten is what Close could not write.
type Unwritten struct {
	// Sessions holds one entry per session with unwritten changes, sorted by
	// ID; empty when Close wrote everything.
	Sessions []UnwrittenSession
	// Items is the total of Sessions[i].Items.
	Items int
}

// UnwrittenSession is one session Close left unwritten.
type UnwrittenSession struct {
	// Session is the session's ID.
	Session string
	// Items counts its pending items (the latest change of each key).
	Items int
	// Ended is true when an End of the session was not written either.
	Ended bool
	// Err is the last error of the session's writes, or nil if none failed
	// (Close ran out of time before writing it).
	Err error
}

func unwritten(r buffer.Report) Unwritten {
	out := Unwritten{Items: r.Items}
	for _, u := range r.Sessions {
		out.Sessions = append(out.Sessions, UnwrittenSession{Session: u.Session, Items: u.Items, Ended: u.Ended, Err: translate(u.Err)})
	}
	return out
}

// join merges the unwritten sessions of two buffers, sorted by ID.
func (u Unwritten) join(v Unwritten) Unwritten {
	if len(v.Sessions) == 0 {
		return u
	}
	u.Sessions = append(u.Sessions, v.Sessions...)
	slices.SortFunc(u.Sessions, func(x, y UnwrittenSession) int { return cmp.Compare(x.Session, y.Session) })
	u.Items += v.Items
	return u
}

// closeReserve is the share of Close's time left for releasing sessions and
// the lease after draining (at most maxCloseReserve): a drain that cannot
// finish (Cassandra down) must not take the time those need.
const (
	closeReserve    = 4 // a quarter
	maxCloseReserve = 2 * time.Second
)

// Close refuses new commits (ErrClosed), drains the buffer, releases every
// session whose state it wrote, stops renewing the lease and closes the
// Cassandra session. Adoptions waiting for a dead owner's lease
// (AdoptOptions.Wait) return ErrClosed at once, and a Takeover in progress
// starts no further adoption (it returns ErrClosed); what they adopted
// before is released with the rest. Sessions left unwritten stay owned and become adoptable
// when the lease expires. Close is for graceful shutdown (SIGTERM); call it
// once.
//
// Close returns by ctx's deadline, whatever Cassandra does: it drains until a
// quarter of the time left (at most 2s) remains, and releases in that
// remainder. Give it a deadline: with a context that never ends, Close waits
// for as long as Cassandra is unreachable. The report lists what it could not
// write; the error joins what went wrong (ctx's error when the drain ran out
// of time, release or lease errors).
func (a *Adapter) Close(ctx context.Context) (CloseReport, error) {
	var rep CloseReport
	a.gate.Lock()
	closing := a.closed.CompareAndSwap(false, true)
	a.gate.Unlock()
	if !closing {
		return rep, ErrClosed
	}
	// Release and the lease drop run after ctx is cancelled too (the drain
	// may end that way), but never past its deadline.
	after := context.WithoutCancel(ctx)
	drainCtx, cancelDrain := context.WithCancel(ctx)
	defer cancelDrain()
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		after, cancel = context.WithDeadline(after, deadline)
		defer cancel()
		reserve := min(time.Until(deadline)/closeReserve, maxCloseReserve)
		drainCtx, cancel = context.WithDeadline(drainCtx, deadline.Add(-reserve))
		defer cancel()
	}
	if a.res.Replaced() {
		// Another process holds this node ID: nothing can be written any
		// more, so do not wait for the deadline.
		cancelDrain()
	}
	// Adoptions waiting for a dead owner's lease, and takeovers, stop now:
	// those past their wait finish, and what they adopt is released below.
	a.res.StopAdopting()
	// Shared writes need no lease: drained beside, in the same time, and
	// refused from now on as Commit is.
	var (
		sharedRep  buffer.Report
		sharedErr  error
		sharedDone = make(chan struct{})
	)
	if a.sharedBuf != nil {
		// Refused before either drain starts: a Commit refused now means a
		// CommitShared is too.
		a.sharedBuf.Refuse()
	}
	go func() {
		defer close(sharedDone)
		if a.sharedBuf != nil {
			sharedRep, sharedErr = a.sharedBuf.Close(drainCtx)
			a.shared.close()
		}
	}()
	buffered, bufErr := a.buf.Close(drainCtx)
	<-sharedDone
	rep.Unwritten = unwritten(buffered)
	if a.sharedBuf != nil {
		rep.Unwritten = rep.Unwritten.join(unwritten(sharedRep))
		bufErr = errors.Join(bufErr, sharedErr)
	}
	// A recording of a new session still under way (its flush gave up at the
	// deadline) would land after the forgetting and releasing below.
	a.res.StopPreparing()
	for _, u := range buffered.Sessions {
		a.res.Forget(u.Session) // not released: its latest state is not persisted
	}

	// The rest waits for Cassandra: bounded by the deadline. Should it not
	// finish, the lease expires by its TTL.
	type result struct {
		released       int
		relErr, resErr error
	}
	done := make(chan result, 1)
	releasedBefore := a.res.Stats().Released
	go func() {
		var r result
		a.calls.Wait() // adoptions in progress: theirs are released too
		r.released, r.relErr = a.res.ReleaseAll(after)
		r.resErr = a.res.Close(after, r.relErr == nil && len(buffered.Sessions) == 0)
		done <- r
	}()
	var r result
	select {
	case r = <-done:
	case <-after.Done():
		r.resErr = after.Err()
		// The releases answered so far (ReleaseAll's count is not known
		// until its last release returns).
		r.released = int(a.res.Stats().Released - releasedBefore)
		a.log.Warn("holdover: close: releasing sessions did not finish by the deadline; peers adopt the rest when the lease expires", "released", r.released)
	}
	rep.Released = r.released
	a.tel.unregister()
	// Closing the driver's connections waits for requests in flight, which
	// a partition holds until their timeout: in the background past the
	// deadline.
	storeClosed := make(chan struct{})
	go func() {
		a.store.Close()
		close(storeClosed)
	}()
	select {
	case <-storeClosed:
	case <-after.Done():
	}
	a.log.Info("holdover: adapter closed", "node", a.cfg.NodeID, "released", r.released, "unwritten_sessions", len(buffered.Sessions))
	return rep, errors.Join(translate(bufErr), translate(r.relErr), translate(r.resErr))
}
