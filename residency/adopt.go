package residency

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/holdover/holdover/internal/store"
)

// Adopted is a session this node now owns, with the state to restore.
type Adopted struct {
	Session       string
	Epoch         uint64       // the epoch this node owns it at
	PreviousOwner string       // the node that owned it before
	Released      bool         // the previous owner had released it (graceful shutdown)
	Items         []store.Item // the persisted state, in key order
	// Waited is how long the adoption waited for a live owner's lease to
	// run out (AdoptOptions.Wait).
	Waited time.Duration
	// reindexed: the adoption moves the session's owner-index entry itself
	// (a takeover that joined it has nothing to move).
	reindexed bool
}

// Peeked is a read-only view of a session.
type Peeked struct {
	Session string
	Owner   string
	Epoch   uint64
	Items   []store.Item
}

// AdoptOptions changes how Adopt treats a live owner.
type AdoptOptions struct {
	// Force adopts even when the owner's lease is live and it did not release
	// the session (an operator's takeover of a node known to be gone).
	Force bool
	// From, with Force, names the node known to be gone: the adoption is
	// forced only away from it. When the session has meanwhile been adopted
	// by another node whose lease is live (a peer's takeover after From's
	// lease expired), Adopt refuses with an *OwnedElsewhereError naming that
	// node instead of dispossessing it without its knowing. Empty: force away
	// from whichever node owns the session.
	From string
	// Wait, when positive, makes an adoption refused because the owner's
	// lease is live wait for that lease to run out, for up to Wait, instead
	// of refusing at once: the session is adopted the moment its dead
	// owner's lease ends, with no polling by the host. The lease is read
	// again when the cached copy runs out (LeaseCacheTTL), so an owner that
	// shuts down gracefully meanwhile (it releases its sessions, then drops
	// its lease) is seen then; an owner whose lease runs past Wait (it
	// renewed: it is alive) is refused at once. Callers that adopt one
	// session concurrently share one adoption, and so the first caller's
	// Wait.
	Wait time.Duration
	// Fresh looks in the store even when the session was found absent
	// moments ago (the negative cache), as Force does.
	Fresh bool
}

// forceAway reports whether opts force the adoption away from owner.
func (o AdoptOptions) forceAway(owner string) bool {
	return o.Force && (o.From == "" || o.From == owner)
}

// Adopt takes ownership of a non-resident session and returns its state.
//
// In order: an ID confirmed absent moments ago answers ErrNotFound without a
// query; concurrent calls for one ID share one lookup (and its first caller's
// options, but not its context: a caller whose lookup ended because the first
// caller's context did looks again); the ownership row is
// read (none: ErrNotFound); a live owner that did not release the session gives
// an *OwnedElsewhereError naming it, unless opts force it away from that
// node (Force, and From empty or naming it); otherwise a
// compare-and-set on the epoch claims it (exactly one claimant wins; losers get
// an *OwnedElsewhereError naming the winner) while the state is read; the
// winner fences the previous owner, so none of its later writes can become
// visible. A session its owner released (graceful shutdown) needs no fence:
// the owner released it after its last write was acknowledged and will not
// write it again, so nothing follows the claim and the read.
//
// Adopt is safe to retry: a failure after the claim leaves the session owned
// by this node in Cassandra, and the next Adopt claims it again (one epoch up)
// and fences.
func (m *Manager) Adopt(ctx context.Context, session string, opts AdoptOptions) (*Adopted, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	// Read before the lease is checked: a fence from here on voids the
	// adoption (holdUnlessFenced).
	fences := m.stats.fences.Load()
	if !m.LeaseValid() {
		return nil, m.fencedErr()
	}
	if _, ok := m.Epoch(session); ok {
		return nil, ErrAlreadyOwned
	}
	if !opts.Force && !opts.Fresh && m.neg.absent(session) {
		m.stats.notFound.Add(1)
		m.stats.negativeHits.Add(1)
		return nil, ErrNotFound
	}
	// One lookup per session at a time, forced or not: a forced and a normal
	// adoption of one session on one node must not both claim it. A forced
	// caller that joined a normal lookup refused by a live owner looks again,
	// forced.
	v, err := m.lookup(ctx, session, func() (any, error) { return m.adopt(ctx, session, opts, fences) },
		func(err error) bool {
			var oe *OwnedElsewhereError
			return errors.As(err, &oe) && oe.Live && opts.forceAway(oe.Owner)
		})
	if err != nil {
		return nil, err
	}
	a := *v.(*Adopted) // each caller gets its own copy of the header
	return &a, nil
}

// lookup runs fn as the one lookup of session under way (flight), or joins
// the one running, and returns its outcome. A joiner is bounded by its own
// context: when that ends first it returns the context's error and the
// lookup goes on for its other callers. A caller whose own lookup runs waits
// for it, since fn ends with ctx and its outcome (a session held, perhaps)
// must be returned. A joiner looks again (ErrAlreadyOwned once this node
// holds the session) when the lookup it joined was ended by its leader's
// context (cancelled or past its deadline) while its own lives, or when
// again says so of its outcome (nil: never).
func (m *Manager) lookup(ctx context.Context, session string, fn func() (any, error), again func(error) bool) (any, error) {
	for {
		v, err, shared := m.lookupOnce(ctx, session, fn)
		leaders := ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
		if !shared || !(leaders || again != nil && again(err)) {
			return v, err
		}
		if _, ok := m.Epoch(session); ok {
			return nil, ErrAlreadyOwned
		}
	}
}

// lookupOnce is one round of lookup: fn's outcome, or the caller's context's
// error when that ends first and fn is another caller's.
func (m *Manager) lookupOnce(ctx context.Context, session string, fn func() (any, error)) (v any, err error, shared bool) {
	var led atomic.Bool
	ch := m.flight.DoChan(session, func() (any, error) { led.Store(true); return fn() })
	select {
	case r := <-ch:
		return r.Val, r.Err, r.Shared
	case <-ctx.Done():
	}
	if led.Load() {
		r := <-ch
		return r.Val, r.Err, r.Shared
	}
	// Joined another caller's lookup (or this one's has not started: it
	// starts with ctx ended, and fails at its first request).
	return nil, ctx.Err(), true
}

// adopt is Adopt's lookup. fences is the node's fence count, read before its
// lease was last found valid: an adoption that lands after a fence since
// does not hold the session (adopted).
func (m *Manager) adopt(ctx context.Context, session string, opts AdoptOptions, fences uint64) (*Adopted, error) {
	m.adopting.Store(session, struct{}{})
	defer m.adopting.Delete(session)
	giveUp := time.Now().Add(opts.Wait)
	var waited time.Duration
	a, r, err := m.adoptOnce(ctx, session, opts, fences)
	for {
		if a != nil {
			a.Waited = waited
		}
		// r is set when a live owner refused it: wait for its lease to end,
		// looking again when the cached copy runs out.
		if r.lease.ends.IsZero() || opts.Wait <= 0 || r.lease.ends.After(giveUp) {
			return a, err
		}
		waitFrom := time.Now()
		t := time.NewTimer(time.Until(r.lease.until) + time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			// The refusal, and why the wait ended: callers that joined this
			// lookup (Adopt's single flight) look again while their own
			// contexts live.
			return nil, fmt.Errorf("%w (wait cut short: %w)", err, ctx.Err())
		case <-m.ending.Done():
			t.Stop()
			return nil, ErrClosed
		}
		waited += time.Since(waitFrom)
		fences = m.stats.fences.Load() // nothing was claimed while it waited
		if !m.LeaseValid() {
			return nil, m.fencedErr()
		}
		if _, ok := m.Epoch(session); ok {
			return nil, ErrAlreadyOwned
		}
		m.stats.leaseWaits.Add(1)
		a, r, err = m.adoptAfterWait(ctx, session, r.owner, fences)
	}
}

// refusal is an adoption refused because the owner's lease is live: that
// lease as this node trusts it, and the ownership row read.
type refusal struct {
	lease liveLease
	owner store.Owner
}

// adoptOnce is one attempt of adopt. When a live owner refuses it, the
// refusal says whose lease and which row.
func (m *Manager) adoptOnce(ctx context.Context, session string, opts AdoptOptions, fences uint64) (*Adopted, refusal, error) {
	o, found, err := m.store.ReadOwner(ctx, session)
	m.stats.ownerReads.Add(1)
	if err != nil {
		m.stats.adoptErrors.Add(1)
		return nil, refusal{}, err
	}
	if !found || o.Ended {
		m.rememberAbsent(session)
		m.stats.notFound.Add(1)
		return nil, refusal{}, ErrNotFound
	}
	// A row naming this node but absent from the ownership map belongs to an
	// earlier incarnation of this node: adopt it like any other.
	if o.Node != m.cfg.NodeID && !o.Released && !opts.forceAway(o.Node) {
		var (
			live  bool
			lease liveLease
		)
		if m.vouched(o.Node, o.ClaimedAt) {
			m.stats.leaseVouched.Add(1)
		} else if live, lease, err = m.sharedLease(ctx, o.Node, o.ClaimedAt); err != nil {
			m.stats.adoptErrors.Add(1)
			return nil, refusal{}, err
		}
		if live {
			m.stats.ownedElsewhere.Add(1)
			return nil, refusal{lease: lease, owner: o}, &OwnedElsewhereError{Session: session, Owner: o.Node, Epoch: o.Epoch, Live: true}
		}
	}
	// The state is read concurrently with the claim, once the owner is known
	// to be gone (or to have released the session): an adoption refused
	// because the owner is live reads no state. A host retries such a
	// refusal until the owner's lease runs out, for every session of a dead
	// node at once, and reading each session's whole state on every retry
	// loaded Cassandra in the very seconds the survivor's adoptions need it.
	// Reading before the claim lands restores what reading after it would:
	// for a crashed owner, the fence shadows every write of an older epoch,
	// including any that lands after this read; a released session's owner
	// released it after its last write was acknowledged (the release was
	// seen above), and the claim requires the row still released.
	state := m.readState(ctx, session)
	defer state.cancel()
	won, cur, err := m.store.Claim(ctx, session, o, m.cfg.NodeID, m.ttl(session))
	if err != nil {
		m.stats.adoptErrors.Add(1)
		return nil, refusal{}, err
	}
	if !won {
		if cur.Epoch == 0 || cur.Ended {
			m.stats.notFound.Add(1)
			return nil, refusal{}, ErrNotFound
		}
		m.stats.claimConflicts.Add(1)
		return nil, refusal{}, &OwnedElsewhereError{Session: session, Owner: cur.Node, Epoch: cur.Epoch, Raced: true}
	}
	items, err := state.wait()
	if err != nil {
		m.stats.adoptErrors.Add(1)
		return nil, refusal{}, err
	}
	if !o.Released {
		if err := m.store.Fence(ctx, session, cur.Epoch, items); err != nil {
			m.stats.adoptErrors.Add(1)
			return nil, refusal{}, err
		}
	}
	a, err := m.adopted(session, o.Node, cur.Epoch, o.Released, items, true, fences)
	return a, refusal{}, err
}

// adopted records that this node owns session at epoch, won from prev with
// its state items, and, with reindex, moves its owner index entry (a hint
// for bulk takeover) off the adoption's critical path (a takeover moves its
// sessions' entries in batches instead). An entry moved from a peer joins
// the moves of other adoptions from that peer (indexMoves: two requests for
// up to moveChunk of them, where each alone wrote two rows in two requests,
// beside the adoptions that followed it); one this node re-adopts from
// itself (a session it released) is written alone.
//
// A node that fenced since the adoption checked its lease (fences: its fence
// count then) does not hold the session, and the adoption fails with
// ErrFenced: neither that fence nor the recovery after it knew of the
// session, and peers that saw the lease lapse may have adopted it meanwhile
// (a claim that landed, then a fence held up past the lease by a Cassandra
// stall). Its claim stays: a retry claims the session again and fences.
func (m *Manager) adopted(session, prev string, epoch uint64, released bool, items []store.Item, reindex bool, fences uint64) (*Adopted, error) {
	held, ok := m.holdUnlessFenced(session, epoch, fences)
	if !ok {
		m.stats.adoptErrors.Add(1)
		return nil, m.fencedErr()
	}
	m.neg.forget(session)
	m.stats.adopted.Add(1)
	if !reindex {
		return &Adopted{Session: session, Epoch: held, PreviousOwner: prev, Released: released, Items: items}, nil
	}
	if prev != m.cfg.NodeID {
		reindexed := m.indexMoves.move(prev, session, epoch)
		return &Adopted{Session: session, Epoch: held, PreviousOwner: prev, Released: released, Items: items, reindexed: reindexed}, nil
	}
	m.indexMu.Lock()
	reindexed := !m.indexClosed
	if reindexed {
		m.indexing.Add(1)
		go func() {
			defer m.indexing.Done()
			m.reindex(session, epoch)
		}()
	}
	m.indexMu.Unlock()
	return &Adopted{Session: session, Epoch: held, PreviousOwner: prev, Released: released, Items: items, reindexed: reindexed}, nil
}

// rememberAbsent caches session as absent, found so by a lookup, unless
// this node holds it by now: a creation here that landed while the lookup's
// read was on its way forgot the absence (after holding the session) before
// the lookup remembered it, and the node's own Peek and Adopt would answer
// ErrNotFound for it until the entry's TTL ran out.
func (m *Manager) rememberAbsent(session string) {
	m.neg.remember(session)
	if _, ok := m.Epoch(session); ok {
		m.neg.forget(session)
	}
}

// pendingRead is a read of a session's state running in the background.
type pendingRead struct {
	ch     chan stateRead
	cancel context.CancelFunc
}

type stateRead struct {
	items []store.Item
	err   error
}

// readState starts reading a session's state.
func (m *Manager) readState(ctx context.Context, session string) pendingRead {
	ctx, cancel := context.WithCancel(ctx)
	r := pendingRead{ch: make(chan stateRead, 1), cancel: cancel}
	go func() {
		items, err := m.store.ReadState(ctx, session)
		r.ch <- stateRead{items, err}
	}()
	return r
}

func (r pendingRead) wait() ([]store.Item, error) {
	res := <-r.ch
	return res.items, res.err
}

// reindex writes session's index entry under this node at epoch: a session
// this node re-adopts from itself (adoptions from peers move their entries
// through indexMoves). The index is a hint for bulk takeover, so failures are
// logged, not returned.
func (m *Manager) reindex(session string, epoch uint64) {
	ctx, cancel := context.WithTimeout(m.bg, 5*time.Second) // Close's context may end it
	defer cancel()
	if err := m.store.IndexOwner(ctx, m.cfg.NodeID, session, epoch, m.ttl(session)); err != nil {
		m.cfg.Logger.Warn("holdover: owner index not updated", "session", session, "err", err)
	}
}

// Peek reads a session without adopting it: its owner, epoch and persisted
// items (which may lag the owner's unflushed changes by the flush window).
func (m *Manager) Peek(ctx context.Context, session string) (*Peeked, error) {
	if m.neg.absent(session) { // not counted in NegativeHits, which counts adoptions
		return nil, ErrNotFound
	}
	o, found, err := m.store.ReadOwner(ctx, session)
	m.stats.ownerReads.Add(1)
	if err != nil {
		return nil, err
	}
	if !found || o.Ended {
		m.rememberAbsent(session)
		return nil, ErrNotFound
	}
	items, err := m.store.ReadState(ctx, session)
	if err != nil {
		return nil, err
	}
	return &Peeked{Session: session, Owner: o.Node, Epoch: o.Epoch, Items: items}, nil
}
