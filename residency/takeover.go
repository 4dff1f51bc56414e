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
	Rate        float64 // adoptions started per second; default 500
	Concurrency int     // adoptions in flight; default 16
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
		opts.Rate = 500
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
		mu   sync.Mutex
		wg   sync.WaitGroup
		sem  = make(chan struct{}, opts.Concurrency)
		tick = time.NewTicker(time.Duration(float64(time.Second) / opts.Rate))
		last = time.Now()
	)
	defer tick.Stop()
	record := func(a *Adopted, err error) {
		mu.Lock()
		defer mu.Unlock()
		var oe *OwnedElsewhereError
		switch {
		case err == nil:
			rep.Adopted++
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrAlreadyOwned), errors.As(err, &oe):
			rep.Skipped++
		default:
			rep.Failed++
			if len(rep.Errors) < 10 {
				rep.Errors = append(rep.Errors, fmt.Errorf("session %q: %w", a.Session, err))
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
		sem <- struct{}{}
		wg.Add(1)
		go func(o store.Owned) {
			defer func() { <-sem; wg.Done() }()
			a, err := m.takeOne(ctx, node, o, opts.Force)
			if err == nil && opts.OnAdopted != nil {
				opts.OnAdopted(a)
			}
			if a == nil {
				a = &Adopted{Session: o.Session}
			}
			record(a, err)
		}(o)
	}
	wg.Wait()
	m.indexing.Wait()
	rep.Duration = time.Since(began)
	return rep, nil
}

// takeOne adopts one session the owner index lists under node. Takeover has
// already found node's lease expired, and the index names the epoch to claim
// at, so the claim is sent at once, alongside the read of the state, without
// reading the ownership row or the lease again: two rounds (claim, fence)
// instead of four. When the row has moved on (the index lags) and still
// names node, the session is adopted the ordinary way; when it names another
// node, that node has it. A forced takeover adopts the ordinary way.
func (m *Manager) takeOne(ctx context.Context, node string, o store.Owned, force bool) (*Adopted, error) {
	if force {
		return m.Adopt(ctx, o.Session, AdoptOptions{Force: true})
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
	v, err, _ := m.flight.Do(o.Session, func() (any, error) { return m.claimListed(ctx, node, o) })
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
func (m *Manager) claimListed(ctx context.Context, node string, o store.Owned) (*Adopted, error) {
	if _, ok := m.Epoch(o.Session); ok { // adopted by a caller this one joined late
		return nil, ErrAlreadyOwned
	}
	state := m.readState(ctx, o.Session)
	defer state.cancel()
	prev := store.Owner{Node: node, Epoch: o.Epoch}
	won, cur, err := m.store.Claim(ctx, o.Session, prev, m.cfg.NodeID, m.cfg.OwnershipTTL)
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
	items, err := state.wait()
	if err == nil {
		err = m.store.Fence(ctx, o.Session, cur.Epoch, items)
	}
	if err != nil {
		m.stats.adoptErrors.Add(1)
		return nil, err
	}
	return m.adopted(o.Session, node, cur.Epoch, false, items), nil
}
