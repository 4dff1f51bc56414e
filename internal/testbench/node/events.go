package node

import (
	"context"
	"errors"
	"fmt"
	"github.com/holdover/holdover/internal/testbench/wire"
	"slices"

	"github.com/holdover/holdover/adapter"
)

// Apply applies one event to session id, in order with the session's other
// events. When the session is not resident, an event other than create
// adopts it first. The event's changes reach the adapter inside the
// transaction's commit; if the adapter refuses them (ErrBufferFull, ...)
// nothing of the event is applied and the error is returned.
func (n *Node) Apply(ctx context.Context, id string, ev wire.Event) (wire.Result, error) {
	a, err := n.adapter()
	if err != nil {
		return wire.Result{}, err
	}
	if err := n.checkEvent(id, ev); err != nil {
		return wire.Result{}, err
	}
	if !a.LeaseValid() {
		// Never acknowledge a change this node may no longer own.
		return wire.Result{}, fmt.Errorf("%w: %w", ErrNotReady, adapter.ErrFenced)
	}
	res := wire.Result{Session: id, Node: n.cfg.NodeID}
	tx := n.table.Begin(id)
	defer tx.Rollback()

	if ev.Type == wire.EventCreate {
		if tx.Resident() {
			return res, residentError{id: id, node: n.cfg.NodeID}
		}
		// Refuse a new session the commit would refuse before looking
		// for a stale one under its ID: a refused burst costs no reads.
		if err := a.CheckNew(id); err != nil {
			return res, fmt.Errorf("session %q: create event not applied: %w", id, err)
		}
		// Fresh: a "not found" this node cached moments ago may be stale
		// (a peer recorded the session since), and would let this create
		// be acknowledged and then dropped as owned elsewhere.
		items, err := n.fetch(ctx, a, id, adapter.AdoptOptions{Fresh: true})
		switch {
		case errors.Is(err, adapter.ErrNotFound):
		case err != nil:
			return res, err
		default:
			res.Adopted = true // a stale session under this ID, now ours to replace
		}
		keys := make([]string, len(items))
		for i, it := range items {
			keys[i] = it.Key
		}
		tx.Create(ev.Attrs, keys)
	} else {
		if !tx.Resident() {
			s, err := n.restore(ctx, a, id, adapter.AdoptOptions{})
			if err != nil {
				return res, err
			}
			tx.Restore(s)
			res.Adopted = true
		}
		switch ev.Type {
		case wire.EventUpdate:
			tx.SetAttrs(ev.Attrs)
		case wire.EventAppend:
			if len(tx.Session().History) >= MaxHistory {
				return res, badInput("session %q: history is full (%d entries)", id, MaxHistory)
			}
			tx.Append(*ev.Entry)
		case wire.EventUnset:
			tx.Unset(ev.Keys)
		case wire.EventEnd:
			tx.End()
		}
	}
	// Again before committing: the lease may have lapsed while the event
	// waited for its session or adopted it.
	if !a.LeaseValid() {
		return res, fmt.Errorf("session %q: %s event not applied: %w: %w", id, ev.Type, ErrNotReady, adapter.ErrFenced)
	}
	res.Version, err = tx.Commit()
	if err != nil {
		return res, fmt.Errorf("session %q: %s event not applied: %w", id, ev.Type, err)
	}
	if res.Adopted {
		n.log.Debug("session adopted", "session", id, "event", ev.Type, "version", res.Version)
	}
	return res, nil
}

// Get returns session id if it is resident. With adopt, a session that is
// not resident is adopted first (with the outcomes of Apply's adoption);
// without, it is ErrNotResident.
func (n *Node) Get(ctx context.Context, id string, adopt bool) (wire.View, error) {
	return n.get(ctx, id, adopt, adapter.AdoptOptions{})
}

// ForceAdopt is Get with adoption where a session owned by a node whose lease
// is still live is adopted all the same (adapter.AdoptOptions.Force), for an
// operator or a test that knows that node is gone. With from set, only a
// session owned by node from is forced; one another live node owns is
// refused naming it (adapter.AdoptOptions.From). A session resident here is
// returned as it is.
func (n *Node) ForceAdopt(ctx context.Context, id, from string) (wire.View, error) {
	return n.get(ctx, id, true, adapter.AdoptOptions{Force: true, From: from})
}

func (n *Node) get(ctx context.Context, id string, adopt bool, opts adapter.AdoptOptions) (wire.View, error) {
	if err := n.checkSession(id); err != nil {
		return wire.View{}, err
	}
	if s := n.table.Get(id); s != nil {
		return n.view(s, false), nil
	}
	if !adopt {
		if a, err := n.adapter(); err == nil {
			if err := n.sharedSession(a, id); err != nil {
				return wire.View{}, err
			}
		}
		return wire.View{}, notResidentError{id: id, node: n.cfg.NodeID}
	}
	a, err := n.adapter()
	if err != nil {
		return wire.View{}, err
	}
	tx := n.table.Begin(id)
	defer tx.Rollback()
	if s := tx.Session(); s != nil { // adopted by an event meanwhile
		return n.view(tx.base, false), nil
	}
	s, err := n.restore(ctx, a, id, opts)
	if err != nil {
		return wire.View{}, err
	}
	tx.Restore(s)
	n.log.Debug("session adopted", "session", id, "event", "get")
	return n.view(s, true), nil
}

// sharedSession refuses id when it is a shared family's session (400, as
// with ?adopt=true): the session endpoints serve owned sessions, and
// /v1/shared the shared ones.
func (n *Node) sharedSession(a *adapter.Adapter, id string) error {
	name := a.FamilyOf(id)
	for _, f := range n.cfg.Families {
		if f.Shared && f.Name == name {
			return badInput("session %q is in the shared family %q: read it at /v1/shared/%s", id, name, id)
		}
	}
	return nil
}

func (n *Node) view(s *Session, adopted bool) wire.View {
	h := s.History
	if h == nil {
		h = []string{}
	}
	return wire.View{Session: s.ID, Node: n.cfg.NodeID, Version: s.Version, Attrs: s.Attrs,
		History: slices.Clip(h), Resident: true, Adopted: adopted}
}

// restore fetches session id from Cassandra and decodes it.
func (n *Node) restore(ctx context.Context, a *adapter.Adapter, id string, opts adapter.AdoptOptions) (*Session, error) {
	items, err := n.fetch(ctx, a, id, opts)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		// Recorded, but nothing of it written: its node died between
		// recording a new session and its first write. Nothing of it was
		// durable, as for a session never recorded.
		return nil, fmt.Errorf("session %q: recorded, but none of its state was written: %w", id, adapter.ErrNotFound)
	}
	s, unknown, err := decodeSession(id, items)
	if err != nil {
		return nil, err
	}
	if unknown > 0 {
		n.log.Warn("persisted items outside the node's layout ignored", "session", id, "items", unknown)
	}
	return s, nil
}

// fetch adopts session id (with opts) and returns its persisted items.
//
// When the adapter says this node owns the session already
// (ErrAlreadyOwned) although the table does not hold it, the session either
// ended moments ago and the end is not flushed yet, or it was dropped from
// the table when the node fenced and the node has since recovered. Either
// way fetch makes the adapter's view durable (Flush) and reads it back
// (Peek): an ended session is then ErrNotFound.
func (n *Node) fetch(ctx context.Context, a *adapter.Adapter, id string, opts adapter.AdoptOptions) (_ []adapter.Item, rerr error) {
	if !opts.Force {
		opts.Wait = n.opts.AdoptWait
	}
	defer func() {
		if rerr == nil {
			n.fetchedByEvent(id)
		}
	}()
	s, err := a.Adopt(ctx, id, opts)
	if err == nil {
		return s.Items, nil
	}
	var owned *adapter.OwnedElsewhereError
	if errors.As(err, &owned) && owned.Live && n.opts.TakeoverOnExpiry {
		n.watchPeer(owned.Owner)
	}
	if !errors.Is(err, adapter.ErrAlreadyOwned) {
		return nil, sessionError(id, "adopt", err)
	}
	// A takeover adopted it and waits for this transaction to restore it:
	// nothing was committed to it since its fence, so its state is what the
	// takeover read.
	if items, ok := n.takenOver.LoadAndDelete(id); ok {
		return items.([]adapter.Item), nil
	}
	if err := a.Flush(ctx); err != nil {
		return nil, fmt.Errorf("session %q: flush before reading back a session this node owns: %w", id, err)
	}
	s, err = a.Peek(ctx, id)
	if err != nil {
		return nil, sessionError(id, "read back", err)
	}
	if s.Owner != n.cfg.NodeID {
		return nil, &adapter.OwnedElsewhereError{Session: id, Owner: s.Owner, Epoch: s.Epoch, Live: true}
	}
	return s.Items, nil
}
