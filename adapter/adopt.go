package adapter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"

	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// Item is one persisted item of a session.
type Item struct {
	// Key names the item inside its session.
	Key string
	// Value is the item's value; nil when it was committed empty.
	Value []byte
}

// itemsOf translates the store's items (which carry a Delete flag that
// persisted items never set).
func itemsOf(in []store.Item) []Item {
	if in == nil {
		return nil
	}
	out := make([]Item, len(in))
	for i, it := range in {
		out[i] = Item{Key: it.Key, Value: it.Value}
	}
	return out
}

// Session is a session's persisted state as Adopt, Peek and
// TakeoverOptions.OnAdopted hand it over.
type Session struct {
	// ID is the session's ID.
	ID string
	// Epoch is the ownership epoch: after Adopt, the one this node owns it at.
	Epoch uint64
	// Owner is the owning node: this node after Adopt.
	Owner string
	// PreviousOwner is the node that owned it before Adopt (empty from Peek).
	PreviousOwner string
	// Released is true when the previous owner had released the session
	// (it shut down gracefully with Close), so its state was complete.
	Released bool
	// Items are the persisted items in key order.
	Items []Item
	// Waited is how long Adopt waited for the previous owner's lease to run
	// out (AdoptOptions.Wait): the rest of the call was the adoption itself.
	Waited time.Duration
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

// AdoptOptions changes how Adopt treats a live owner. The zero value never
// adopts a session from a live owner.
type AdoptOptions struct {
	// Force adopts even when the owner's lease is live and it did not release
	// the session: an operator's takeover of a node known to be gone (hung,
	// or partitioned away for good). A node that is in fact alive finds
	// itself fenced for that session: its later writes never become visible.
	Force bool
	// From, with Force, names the node known to be gone: the adoption is
	// forced only away from it. When the session has meanwhile been adopted
	// by another node whose lease is live (a peer's takeover after From's
	// lease expired), Adopt refuses with an *OwnedElsewhereError naming that
	// node instead of dispossessing it without its knowing. Empty: force away
	// from whichever node owns the session.
	From string
	// Wait, when positive, makes Adopt wait up to Wait for a live owner's
	// lease to run out instead of refusing at once: a request redirected
	// from a node that died is answered the moment that node's lease ends
	// (at most HOLDOVER_LEASE_TTL after its last renewal), with no polling
	// by the host. The lease is read again whenever the cached copy runs out
	// (half the renewal period), so an owner that shuts down gracefully
	// meanwhile (it releases its sessions, then drops its lease) is seen
	// then; an owner whose lease runs past Wait has renewed it (it is alive)
	// and is refused at once with an *OwnedElsewhereError, as is one still
	// live when Wait or ctx ends. Concurrent Adopts of one session share one
	// adoption, and so the first caller's Wait. A host that holds a request
	// while its session is in doubt sets it to the lease TTL plus a margin.
	Wait time.Duration
	// Fresh looks in Cassandra even when this node found the session absent
	// moments ago: ErrNotFound from the negative cache
	// (HOLDOVER_NEGATIVE_CACHE_TTL) may be stale by then, for a peer may have
	// created the session since. Set it when ErrNotFound decides that this
	// node creates the session: the create race is then limited to creates
	// made before either node recorded the session. Costs one read when the
	// cache would have answered.
	Fresh bool
}

// check refuses a From that cannot mean what its caller meant: one set
// without Force (it would be ignored: the adoption would not be forced), or
// one no node ID can be.
func (o AdoptOptions) check() error {
	if o.From == "" {
		return nil
	}
	if !o.Force {
		return &LimitError{Field: "AdoptOptions.From", Limit: maxNodeIDBytes, Got: len(o.From),
			Reason: fmt.Sprintf("%q is set without AdoptOptions.Force: it names the node a forced adoption takes the session from", o.From)}
	}
	return nodeIDError("AdoptOptions.From", o.From)
}

func (o AdoptOptions) residency() residency.AdoptOptions {
	return residency.AdoptOptions{Force: o.Force, From: o.From, Wait: o.Wait, Fresh: o.Fresh}
}

func (a *Adapter) adopted(got *residency.Adopted) *Session {
	return &Session{ID: got.Session, Epoch: got.Epoch, Owner: a.cfg.NodeID, PreviousOwner: got.PreviousOwner,
		Released: got.Released, Items: itemsOf(got.Items), Waited: got.Waited}
}

// Adopt takes ownership of a session this node does not hold (an event for it
// was redirected here) and returns its persisted state for the host to
// restore. After a successful Adopt no write of the previous owner can become
// visible, and this node's commits to the session persist as usual.
//
// Every other outcome leaves ownership as it was:
//   - ErrNotFound: no such session is persisted (new, ended or expired):
//     the host may create it here.
//   - *OwnedElsewhereError (ErrOwnedElsewhere): a live node owns it (past
//     AdoptOptions.Wait, when set), or another node adopted it first:
//     forward the event to its Owner.
//   - ErrAlreadyOwned: this node owns it already: Flush, then Peek to reload
//     the host's copy.
//   - ErrFenced: this node's lease lapsed: refuse the event.
//   - ErrClosed: the adapter is closed or closing.
//   - *LimitError (ErrInvalidInput): the session ID is invalid, or
//     AdoptOptions.From is set without Force or is no node ID.
//   - any other error (a Cassandra timeout, unavailable replicas, ctx ended):
//     refuse the event; Adopt is safe to retry.
func (a *Adapter) Adopt(ctx context.Context, session string, opts ...AdoptOptions) (*Session, error) {
	if !a.enter() {
		return nil, ErrClosed
	}
	defer a.calls.Done()
	if err := a.checkOwnedSession(session); err != nil {
		return nil, err
	}
	var o AdoptOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	ctx, span := a.tel.tracer.Start(ctx, "holdover.adopt")
	span.SetAttributes(attribute.String("holdover.session", session), attribute.Bool("holdover.force", o.Force))
	began := time.Now()
	got, err := a.res.Adopt(ctx, session, o.residency())
	err = translate(err)
	outcome := adoptOutcome(err)
	a.tel.adoptions.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
	took := time.Since(began)
	if got != nil {
		took -= got.Waited // the wait for a dead owner's lease is not the adoption's
	}
	a.tel.adoptLatency.Record(ctx, float64(took)/float64(time.Millisecond), metric.WithAttributes(attribute.String("outcome", outcome)))
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
	return a.adopted(got), nil
}

// checkOwnedSession checks a session ID for Adopt and Peek: valid, and not
// of a shared family (which nobody owns).
func (a *Adapter) checkOwnedSession(session string) error {
	if err := a.limits.CheckSession(session); err != nil {
		return translate(err)
	}
	if f := a.fams.of(session); f != nil && f.Shared {
		return errSharedSession(session, f)
	}
	return nil
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
	if !a.enter() {
		return nil, ErrClosed
	}
	defer a.calls.Done()
	if err := a.checkOwnedSession(session); err != nil {
		return nil, err
	}
	p, err := a.res.Peek(ctx, session)
	if err != nil {
		return nil, translate(err)
	}
	return &Session{ID: session, Epoch: p.Epoch, Owner: p.Owner, Items: itemsOf(p.Items)}, nil
}
