package adapter

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

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
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()

	if !a.res.LeaseValid() {
		// The lease lapsed (fenced, or the process was paused past the TTL):
		// peers may own this session now. Retry after the lease goroutine has
		// fenced and recovered; it discards the sessions this node lost.
		return ErrFenced
	}
	epoch, owned := a.res.Epoch(s.Session)
	if !owned && s.Ended && len(s.Items) == 0 {
		return nil // created and ended inside one window: never persisted
	}
	if !owned {
		epoch, err = a.res.EnsureOwned(ctx, s.Session)
		var oe *residency.OwnedElsewhereError
		switch {
		case errors.As(err, &oe):
			// Another node owns this ID: writing would be fenced anyway.
			return buffer.Permanent(err)
		case err != nil:
			return err
		}
	}
	w := store.Write{Session: s.Session, Epoch: epoch, Seq: s.Seq, Ended: s.Ended, Items: s.Items}
	if err := a.store.WriteSession(ctx, &w); err != nil {
		return err
	}
	if s.Ended && len(s.Items) == 0 && s.Part == s.Parts {
		if err := a.res.Ended(ctx, s.Session); err != nil {
			// The state is gone; the ownership row expires by its TTL.
			a.log.Warn("holdover: ownership row of an ended session not deleted", "session", s.Session, "err", err)
		}
	}
	return nil
}
