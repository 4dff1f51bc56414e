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
		go func(session string) {
			defer func() { <-sem; wg.Done() }()
			a, err := m.Adopt(ctx, session, AdoptOptions{Force: opts.Force})
			if err == nil && opts.OnAdopted != nil {
				opts.OnAdopted(a)
			}
			if a == nil {
				a = &Adopted{Session: session}
			}
			record(a, err)
		}(o.Session)
	}
	wg.Wait()
	m.indexing.Wait()
	rep.Duration = time.Since(began)
	return rep, nil
}
