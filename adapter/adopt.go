package adapter

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"

	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// Item is one persisted key of a session.
type Item = store.Item

// Session is a session's persisted state as Adopt or Peek return it.
type Session struct {
	ID string
	// Epoch is the ownership epoch: after Adopt, the one this node owns it at.
	Epoch uint64
	// Owner is the owning node: this node after Adopt.
	Owner string
	// PreviousOwner is the node that owned it before Adopt.
	PreviousOwner string
	// Items are the persisted items in key order.
	Items []Item
}

// Map returns the items as a map from key to value. A key committed with an
// empty value is present with a zero-length (nil) value; a deleted key is
// absent: test presence with the two-value form, v, ok := m[key].
func (s *Session) Map() map[string][]byte {
	m := make(map[string][]byte, len(s.Items))
	for _, it := range s.Items {
		m[it.Key] = it.Value
	}
	return m
}

// AdoptOptions changes how Adopt treats a live owner.
type AdoptOptions = residency.AdoptOptions

// Adopt takes ownership of a session this node does not hold (an event for it
// was redirected here) and returns its persisted state for the host to
// restore. It returns ErrNotFound when no such session is persisted, and an
// *OwnedElsewhereError when a live node owns it (forward the event there) or
// another node adopted it first. After a successful Adopt no write of the
// previous owner can become visible, and this node's commits to the session
// persist as usual.
func (a *Adapter) Adopt(ctx context.Context, session string, opts ...AdoptOptions) (*Session, error) {
	if a.closed.Load() {
		return nil, ErrClosed
	}
	if err := a.limits.CheckSession(session); err != nil {
		return nil, err
	}
	var o AdoptOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	ctx, span := a.tel.tracer.Start(ctx, "holdover.adopt")
	span.SetAttributes(attribute.String("holdover.session", session), attribute.Bool("holdover.force", o.Force))
	began := time.Now()
	got, err := a.res.Adopt(ctx, session, o)
	outcome := adoptOutcome(err)
	a.tel.adoptions.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
	a.tel.adoptLatency.Record(ctx, float64(time.Since(began))/float64(time.Millisecond), metric.WithAttributes(attribute.String("outcome", outcome)))
	span.SetAttributes(attribute.String("holdover.outcome", outcome))
	if err != nil {
		if outcome == "error" {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		return nil, err
	}
	span.End()
	return &Session{ID: session, Epoch: got.Epoch, Owner: a.cfg.NodeID, PreviousOwner: got.PreviousOwner, Items: got.Items}, nil
}

func adoptOutcome(err error) string {
	switch {
	case err == nil:
		return "adopted"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrOwnedElsewhere):
		return "owned_elsewhere"
	case errors.Is(err, ErrAlreadyOwned):
		return "already_owned"
	case errors.Is(err, ErrFenced):
		return "fenced"
	}
	return "error"
}

// Peek reads a session's persisted owner, epoch and items without adopting it
// (for related state the host only reads). The items may lag the owner's
// unflushed changes by the flush window.
func (a *Adapter) Peek(ctx context.Context, session string) (*Session, error) {
	if a.closed.Load() {
		return nil, ErrClosed
	}
	if err := a.limits.CheckSession(session); err != nil {
		return nil, err
	}
	p, err := a.res.Peek(ctx, session)
	if err != nil {
		return nil, err
	}
	return &Session{ID: session, Epoch: p.Epoch, Owner: p.Owner, Items: p.Items}, nil
}

// TakeoverOptions bounds a bulk takeover; see residency.TakeoverOptions.
type TakeoverOptions = residency.TakeoverOptions

// TakeoverReport says what a bulk takeover did.
type TakeoverReport = residency.TakeoverReport

// Takeover adopts, at a bounded rate (HOLDOVER_ADOPT_RATE by default), every
// session owned by node, whose lease must have expired (unless opts.Force),
// handing each to opts.OnAdopted so its state is warm before redirected
// events arrive.
func (a *Adapter) Takeover(ctx context.Context, node string, opts TakeoverOptions) (TakeoverReport, error) {
	if a.closed.Load() {
		return TakeoverReport{}, ErrClosed
	}
	if opts.Rate == 0 {
		opts.Rate = a.cfg.AdoptRate
	}
	return a.res.Takeover(ctx, node, opts)
}
