package inspect

import (
	"context"
	"errors"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/storeconf"
)

// Status says who may serve a session now, as the package computes it from
// the ownership row and the owner's lease.
type Status string

const (
	// StatusResident: the owner's lease is live; the owner serves it.
	StatusResident Status = "resident"
	// StatusReleased: the owner shut down gracefully and handed the session
	// over; any node may adopt it at once, without waiting for a lease.
	// Released wins over the owner's lease.
	StatusReleased Status = "released"
	// StatusNonResident: the owner's lease has expired; any node may adopt it.
	StatusNonResident Status = "non-resident"
	// StatusEnded: the ownership row marks the session ended; nobody owns it
	// and Adopt reports it not found. Items should not remain under it.
	StatusEnded Status = "ended"
	// StatusNoOwner: items remain without an ownership row (it expired);
	// Adopt reports the session not found.
	StatusNoOwner Status = "no-owner"
)

// Session is what is persisted of one session.
type Session struct {
	ID     string
	Status Status
	// Owner is the ownership row, nil for StatusNoOwner.
	Owner *Owner
	// Items are the persisted items in key order.
	Items []adapter.Item
}

// Owner is a session's ownership row, with its node's lease.
type Owner struct {
	// Node owns the session (its HOLDOVER_NODE_ID); empty when Ended.
	Node string
	// Epoch is 1 when the session was created and grows by one at each
	// adoption (and at its End).
	Epoch uint64
	// Released is true when Node shut down gracefully and handed the session
	// over: any node may adopt it at once, without waiting for Node's lease.
	Released bool
	// ClaimedAt is when Node created or adopted the session (or it ended).
	ClaimedAt time.Time
	// Ended is true for a session that ended: the row is kept, one epoch
	// above its last owner's, for HOLDOVER_ENDED_TTL so that a session started
	// afresh with the same ID ranks above the End. Nobody owns it.
	Ended bool
	// Lease is Node's lease, nil when it is not live (or Ended).
	Lease *Lease
}

// Session reads the session's ownership row, its owner's lease and its
// items. It returns ErrNotFound when the session has neither a row nor
// items, and an *adapter.LimitError when id is empty or over
// HOLDOVER_MAX_SESSION_ID_BYTES.
func (i *Inspector) Session(ctx context.Context, id string) (Session, error) {
	own, err := i.Owner(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Session{}, err
	}
	items, err := i.st.ReadState(ctx, id)
	if err != nil {
		return Session{}, storeconf.Errors(err)
	}
	s := Session{ID: id, Items: make([]adapter.Item, len(items))}
	for k, it := range items {
		s.Items[k] = adapter.Item{Key: it.Key, Value: it.Value}
	}
	switch {
	case own == nil && len(items) == 0:
		return Session{}, ErrNotFound
	case own == nil:
		s.Status = StatusNoOwner
	case own.Ended:
		s.Status = StatusEnded
	case own.Released:
		s.Status = StatusReleased
	case own.Lease != nil:
		s.Status = StatusResident
	default:
		s.Status = StatusNonResident
	}
	s.Owner = own
	return s, nil
}

// Owner reads the session's ownership row and its node's lease. It returns
// ErrNotFound when the session has no row (it never existed, or it
// expired), and an *adapter.LimitError when id is empty or over
// HOLDOVER_MAX_SESSION_ID_BYTES.
func (i *Inspector) Owner(ctx context.Context, id string) (*Owner, error) {
	row, found, err := i.st.ReadOwner(ctx, id)
	if err != nil {
		return nil, storeconf.Errors(err)
	}
	if !found {
		return nil, ErrNotFound
	}
	o := &Owner{Node: row.Node, Epoch: row.Epoch, Released: row.Released, ClaimedAt: row.ClaimedAt, Ended: row.Ended}
	if row.Ended {
		return o, nil
	}
	l, err := i.Lease(ctx, row.Node)
	switch {
	case err == nil:
		o.Lease = &l
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	return o, nil
}
