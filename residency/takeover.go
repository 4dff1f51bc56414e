package residency

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/holdover/holdover/internal/store"
)

// TakeoverReport says what a bulk takeover did.
type TakeoverReport struct {
	Node     string
	Listed   int           // sessions the owner index listed under Node
	Adopted  int           // adopted by this node
	Skipped  int           // gone, ended, or already owned by another node
	Failed   int           // adoption failed with an error (see Errors)
	Errors   []error       // up to 10 of the failures
	Duration time.Duration // wall time of the takeover
}

// TakeoverOptions bounds a bulk takeover.
type TakeoverOptions struct {
	Rate        float64 // adoptions started per second; default DefaultTakeoverRate (500)
	Concurrency int     // claims in flight (the fences of sessions claimed run beside them, as many again); default 16
	Force       bool    // take over even if Node's lease is live
	// OnAdopted receives each adopted session (from several goroutines), so the
	// host can restore it before its next event arrives.
	OnAdopted func(*Adopted)
	// Progress, when set, is called about once a second with the report so far.
	Progress func(TakeoverReport)
}

// Takeover adopts, at a bounded rate, every session the owner index lists
// under a node whose lease has expired, so their state is warm here before
// redirected events arrive. It refuses a live node unless opts.Force.
func (m *Manager) Takeover(ctx context.Context, node string, opts TakeoverOptions) (TakeoverReport, error) {
	rep := TakeoverReport{Node: node}
	began := time.Now()
	if node == m.cfg.NodeID {
		return rep, errors.New("residency: a node cannot take over its own sessions")
	}
	if !opts.Force {
		if live, err := m.Live(ctx, node); err != nil {
			return rep, err
		} else if live {
			return rep, &OwnedElsewhereError{Owner: node, Live: true}
		}
	}
	if opts.Rate <= 0 {
		opts.Rate = DefaultTakeoverRate
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	var sessions []store.Owned
	if err := m.store.OwnedBy(ctx, node, func(o store.Owned) bool { sessions = append(sessions, o); return true }); err != nil {
		return rep, err
	}
	rep.Listed = len(sessions)

	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		slots = pipeline{claims: make(chan struct{}, opts.Concurrency), fences: make(chan struct{}, opts.Concurrency)}
		tick  = time.NewTicker(time.Duration(float64(time.Second) / opts.Rate))
		last  = time.Now()
		moved []store.Owned // adopted: their index entries move to this node
		stale []string      // skipped: their entries under node are stale
	)
	defer tick.Stop()
	record := func(o store.Owned, a *Adopted, err error) {
		mu.Lock()
		defer mu.Unlock()
		var oe *OwnedElsewhereError
		switch {
		case err == nil:
			rep.Adopted++
			moved = append(moved, store.Owned{Session: o.Session, Epoch: a.Epoch, TTL: m.ttl(o.Session)})
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrAlreadyOwned), errors.As(err, &oe):
			rep.Skipped++
			stale = append(stale, o.Session)
		default:
			rep.Failed++ // its entry stays: a later takeover tries again
			if len(rep.Errors) < 10 {
				rep.Errors = append(rep.Errors, fmt.Errorf("session %q: %w", o.Session, err))
			}
		}
		if opts.Progress != nil && time.Since(last) >= time.Second {
			last = time.Now()
			r := rep
			r.Duration = time.Since(began)
			opts.Progress(r)
		}
	}
	for _, o := range sessions {
		select {
		case <-ctx.Done():
			wg.Wait()
			rep.Duration = time.Since(began)
			return rep, ctx.Err()
		case <-tick.C:
		}
		slots.claims <- struct{}{}
		wg.Add(1)
		go func(o store.Owned) {
			defer wg.Done()
			var once sync.Once
			claimed := func() { once.Do(func() { <-slots.claims }) }
			defer claimed()
			a, err := m.takeOne(ctx, node, o, opts.Force, slots.with(claimed))
			if err == nil && opts.OnAdopted != nil {
				opts.OnAdopted(a)
			}
			record(o, a, err)
		}(o)
	}
	wg.Wait()
	// The owner index is a hint: moved in batches, failures logged.
	if err := m.store.MoveIndex(ctx, node, m.cfg.NodeID, moved, stale, m.cfg.OwnershipTTL); err != nil {
		m.cfg.Logger.Warn("holdover: owner index not moved after a takeover", "node", node, "sessions", len(moved)+len(stale), "err", err)
	}
	m.indexing.Wait()
	rep.Duration = time.Since(began)
	return rep, nil
}

// pipeline bounds a takeover's requests: claims (lightweight transactions,
// what Paxos contends on) and, beside them, the fences of the sessions
// already claimed, each up to TakeoverOptions.Concurrency.
type pipeline struct {
	claims, fences chan struct{}
	claimed        func() // frees this adoption's claim slot (idempotent)
}

func (p pipeline) with(claimed func()) pipeline { p.claimed = claimed; return p }

// fence runs f in a fence slot, after freeing the claim slot for the next
// claim.
func (p pipeline) fence(f func() error) error {
	if p.claimed != nil {
		p.claimed()
	}
	if p.fences == nil {
		return f()
	}
	p.fences <- struct{}{}
	defer func() { <-p.fences }()
	return f()
}

// takeOne adopts one session the owner index lists under node. Takeover has
// already found node's lease expired, and the index names the epoch to claim
// at, so the claim is sent at once, alongside the read of the state, without
// reading the ownership row or the lease again: two rounds (claim, fence)
// instead of four. When the row has moved on (the index lags) and still
// names node, the session is adopted the ordinary way; when it names another
// node, that node has it. A forced takeover adopts the ordinary way. Should
// node's ID come back while a long takeover runs, the takeover may still
// claim sessions it wanted: the compare-and-set decides, and the restarted
// node adopts what it needs like any peer.
func (m *Manager) takeOne(ctx context.Context, node string, o store.Owned, force bool, p pipeline) (*Adopted, error) {
	if force {
		return m.Adopt(ctx, o.Session, AdoptOptions{Force: true, From: node})
	}
	if m.closed.Load() {
		return nil, ErrClosed
	}
	if !m.LeaseValid() {
		return nil, m.fencedErr()
	}
	if _, ok := m.Epoch(o.Session); ok {
		return nil, ErrAlreadyOwned
	}
	v, err, _ := m.flight.Do(o.Session, func() (any, error) { return m.claimListed(ctx, node, o, p) })
	if err != nil {
		return nil, err
	}
	a := *v.(*Adopted)
	return &a, nil
}

// claimListed claims session o at the epoch the index lists under node (a
// node whose lease expired: it neither writes nor releases any more), then
// fences with the state read alongside the claim (as adopt does for a
// crashed owner: the fence shadows any older write that landed after the
// read).
func (m *Manager) claimListed(ctx context.Context, node string, o store.Owned, p pipeline) (*Adopted, error) {
	if _, ok := m.Epoch(o.Session); ok { // adopted by a caller this one joined late
		return nil, ErrAlreadyOwned
	}
	state := m.readState(ctx, o.Session)
	defer state.cancel()
	prev := store.Owner{Node: node, Epoch: o.Epoch}
	won, cur, err := m.store.Claim(ctx, o.Session, prev, m.cfg.NodeID, m.ttl(o.Session))
	switch {
	case err != nil:
		m.stats.adoptErrors.Add(1)
		return nil, err
	case !won && (cur.Epoch == 0 || cur.Ended):
		m.neg.remember(o.Session)
		m.stats.notFound.Add(1)
		return nil, ErrNotFound
	case !won && cur.Node == node:
		state.cancel()
		return m.adopt(ctx, o.Session, AdoptOptions{}) // released, or the index lags
	case !won:
		m.stats.claimConflicts.Add(1)
		return nil, &OwnedElsewhereError{Session: o.Session, Owner: cur.Node, Epoch: cur.Epoch, Raced: true}
	}
	var items []store.Item
	err = p.fence(func() error {
		var err error
		if items, err = state.wait(); err == nil {
			err = m.store.Fence(ctx, o.Session, cur.Epoch, items)
		}
		return err
	})
	if err != nil {
		m.stats.adoptErrors.Add(1)
		return nil, err
	}
	return m.adopted(o.Session, node, cur.Epoch, false, items, false), nil
}
