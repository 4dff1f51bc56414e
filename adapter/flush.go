package adapter

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/holdover/holdover/buffer"
	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// flush writes one session snapshot: it makes sure this node owns the
// session (recording a brand-new one at epoch 1), then writes the snapshot as
// one batch at timestamps ranked by that epoch. The buffer retries transient
// errors and drops the snapshot on permanent ones.
func (a *Adapter) flush(ctx context.Context, s *buffer.Snapshot) (err error) {
	ctx, span := a.tel.tracer.Start(ctx, "holdover.flush")
	if span.IsRecording() { // attributes cost allocations: only for a real tracer
		span.SetAttributes(
			attribute.String("holdover.session", s.Session),
			attribute.Int("holdover.items", len(s.Items)),
			attribute.Bool("holdover.ended", s.Ended),
		)
	}
	defer func() { endSpan(span, err) }()

	if !a.res.LeaseValid() {
		// The lease lapsed (fenced, or the process was paused past the TTL):
		// peers may own this session now. Retry after the lease goroutine has
		// fenced and recovered; it discards the sessions this node lost.
		return ErrFenced
	}
	epoch, write, err := a.owned(ctx, s)
	if !write || err != nil {
		return err
	}
	w := store.Write{Session: s.Session, Epoch: epoch, Seq: s.Seq, Ended: s.Ended, Items: s.Items, More: s.Part < s.Parts}
	if err := a.store.WriteSession(ctx, &w); err != nil {
		return err
	}
	return a.afterWrite(ctx, s)
}

// flushGroup writes several small snapshots of different sessions (see
// Config.FlushGroupMax): the same steps as flush for each, with the writes of
// the owned sessions sent together, one request per first replica.
func (a *Adapter) flushGroup(ctx context.Context, group []*buffer.Snapshot, errs []error) {
	ctx, span := a.tel.tracer.Start(ctx, "holdover.flush_group")
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("holdover.sessions", len(group)))
	}
	defer func() { endSpan(span, errors.Join(errs...)) }()

	if !a.res.LeaseValid() {
		for i := range errs {
			errs[i] = ErrFenced
		}
		return
	}
	// Sessions this node owns are written at once; those it does not own yet
	// are recorded meanwhile (a lightweight transaction each, concurrently,
	// joining the recording started when their first changes were accepted)
	// and written after. The buffer sends the two kinds
	// in groups of their own (ownsSession is its Prepared), so a new
	// session's creation never delays the landing of a running one's write:
	// the group lands when this call returns. A session found owned here
	// that was not when the buffer looked (adopted meanwhile) is written at
	// once all the same.
	epochs := make([]uint64, len(group))
	write := make([]bool, len(group))
	var now, later []int
	var wg sync.WaitGroup
	for i, s := range group {
		if e, ok := a.res.Epoch(s.Session); ok && !a.endInDoubt(s) {
			epochs[i], write[i] = e, true
			now = append(now, i)
			continue
		}
		later = append(later, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			epochs[i], write[i], errs[i] = a.owned(ctx, s)
		}()
	}
	a.writeGroup(ctx, group, now, epochs, write, errs)
	wg.Wait()
	a.writeGroup(ctx, group, later, epochs, write, errs)
}

// prepare is the buffer's OnNew: the first changes of a session the buffer
// held nothing of were accepted. Unless this node owns the session, its
// recording starts now, while the changes wait for their flush delay, and the
// flush joins it (residency's Prepare): a new session's first write is not
// held back a whole recording after its delay.
func (a *Adapter) prepare(session string) { a.res.Prepare(session) }

// ownsSession is the buffer's Prepared: a session this node owns is written
// at once, and one it does not own yet is first recorded (a lightweight
// transaction that may take much longer than a write), so the buffer groups
// those apart and sends them after the others.
func (a *Adapter) ownsSession(session string) bool {
	_, ok := a.res.Epoch(session)
	return ok
}

// writeGroup writes the snapshots group[i], i in idx, that are to be written
// and have no error yet, in one WriteSessions call.
func (a *Adapter) writeGroup(ctx context.Context, group []*buffer.Snapshot, idx []int, epochs []uint64, write []bool, errs []error) {
	ws := make([]*store.Write, 0, len(idx))
	at := make([]int, 0, len(idx))
	for _, i := range idx {
		if s := group[i]; write[i] && errs[i] == nil {
			ws = append(ws, &store.Write{Session: s.Session, Epoch: epochs[i], Seq: s.Seq, Ended: s.Ended, Items: s.Items, More: s.Part < s.Parts})
			at = append(at, i)
		}
	}
	if len(ws) == 0 {
		return
	}
	werrs := make([]error, len(ws))
	a.store.WriteSessions(ctx, ws, werrs)
	for j, i := range at {
		if errs[i] = werrs[j]; errs[i] == nil {
			errs[i] = a.afterWrite(ctx, group[i])
		}
	}
}

// owned returns the epoch to write s at, recording a brand-new session as
// this node's at epoch 1 (or joining its recording, started when its first
// changes were accepted). write is false when there is nothing to write: a
// session created and ended inside one window was never persisted, unless
// its recording was under way, or failed without saying whether it landed
// (residency's Unsettled): such a record may land or stand all the same, so
// the session is recorded (or its row settled) and the End written and
// recorded after it.
func (a *Adapter) owned(ctx context.Context, s *buffer.Snapshot) (epoch uint64, write bool, err error) {
	epoch, owned := a.res.Epoch(s.Session)
	if owned && a.endInDoubt(s) {
		if err := a.res.Ended(ctx, s.Session); err != nil {
			return 0, false, err
		}
		owned = false
	}
	if owned {
		return epoch, true, nil
	}
	if s.Ended && len(s.Items) == 0 && !a.res.Unsettled(s.Session) {
		// A recording that ended since the first look left it owned (it
		// is recorded as owned before it stops being under way).
		epoch, owned = a.res.Epoch(s.Session)
		return epoch, owned, nil
	}
	began := time.Now()
	epoch, err = a.res.EnsureOwned(ctx, s.Session)
	s.Prep = time.Since(began) // once per session: not what its next flushes take
	var oe *residency.OwnedElsewhereError
	switch {
	case errors.As(err, &oe):
		// Another node owns this ID: writing would be fenced anyway.
		return 0, false, buffer.Permanent(err)
	case errors.Is(err, residency.ErrCreationLapsed):
		// The fence discarded the session while its record was on its way:
		// nothing of it may be written now.
		return 0, false, buffer.Permanent(err)
	case err != nil:
		return 0, false, err
	}
	return epoch, true, nil
}

// endInDoubt reports whether s holds an End and new changes of a session
// whose earlier End was written but whose record failed without saying
// whether it landed (residency's EndInDoubt): the session started afresh
// before the End's retry, and both are one snapshot now. Written at the old
// epoch, the new changes could lie under an ended row, lost to any adoption:
// owned records the End first, then owns the session afresh, as after any
// End, before anything of s is written (flush and flushGroup alike).
func (a *Adapter) endInDoubt(s *buffer.Snapshot) bool {
	return s.Ended && len(s.Items) > 0 && a.res.EndInDoubt(s.Session)
}

// afterWrite marks the ownership row of a session whose End was written as
// ended. Until that is done the End has not landed: an error is returned as
// transient, so the buffer writes the End again (idempotent) and retries,
// and the session stays this node's meanwhile. A session started afresh
// after its End then ranks above it, whichever node starts it.
func (a *Adapter) afterWrite(ctx context.Context, s *buffer.Snapshot) error {
	if s.Ended && len(s.Items) == 0 && s.Part == s.Parts {
		if err := a.res.Ended(ctx, s.Session); err != nil {
			a.log.Warn("holdover: end of session not recorded, retrying", "session", s.Session, "err", err)
			return err
		}
	}
	return nil
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
