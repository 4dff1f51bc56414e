package residency

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/holdover/holdover/internal/store"
)

// TakeoverReport says what a bulk takeover did.
type TakeoverReport struct {
	Node     string
	Listed   int           // sessions the owner index listed under Node and the takeover tried
	Adopted  int           // adopted by this node
	Skipped  int           // gone, ended, or already owned by another node
	Failed   int           // adoption failed with an error (see Errors)
	Errors   []error       // up to 10 of the failures
	Duration time.Duration // wall time of the takeover
}

// TakeoverOptions bounds a bulk takeover.
type TakeoverOptions struct {
	Rate float64 // adoptions started per second; default DefaultTakeoverRate (500)
	// Concurrency is how many claims are in flight; default 16. The reads
	// of the states of the sessions listed and the fences of the sessions
	// claimed run beside them, several sessions to a request (see pipeline).
	Concurrency int
	Force       bool // take over even if Node's lease is live
	// OnAdopted receives each adopted session (from several goroutines), so the
	// host can restore it before its next event arrives.
	OnAdopted func(*Adopted)
	// Progress, when set, is called about once a second with the report so
	// far (its Listed grows as the index is listed).
	Progress func(TakeoverReport)
}

// Takeover adopts, at a bounded rate, every session the owner index lists
// under a node whose lease has expired, so their state is warm here before
// redirected events arrive. It refuses a live node unless opts.Force.
//
// Sessions are taken over as the index is listed. A session is reported
// adopted (OnAdopted, the report's Adopted) only once its fence has landed.
// If listing the index fails part way, the sessions listed before the
// failure are still taken over and reported, and the error is returned with
// the report. StopAdopting ends it the same way, with ErrClosed.
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

	// StopAdopting (a graceful shutdown) ends the listing and the pacing:
	// the adoptions already started finish under ctx.
	loopCtx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()
	defer context.AfterFunc(m.ending, stopLoop)()
	// A forced takeover adopts each session the ordinary way (Adopt), which
	// reads its state itself: nothing is read ahead.
	listed := m.list(loopCtx, node, !opts.Force)
	defer listed.stop()
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		claims = make(chan struct{}, opts.Concurrency)
		fences = newFencer(ctx, m.store, fencesInFlight)
		pace   = pacer{every: time.Duration(float64(time.Second) / opts.Rate)}
		index  = &indexMove{m: m, ctx: ctx, from: node} // the index is a hint, moved as sessions settle
	)
	// stopped ends a takeover the listing or pacing stopped: the sessions
	// adopted are indexed under this node unless ctx has ended.
	stopped := func() error {
		if err := ctx.Err(); err != nil {
			index.running.Wait()
			return err
		}
		index.finish()
		return ErrClosed
	}
	record := func(o store.Owned, a *Adopted, err error) {
		mu.Lock()
		defer mu.Unlock()
		var oe *OwnedElsewhereError
		switch {
		case err == nil:
			rep.Adopted++
			if !a.reindexed { // an adoption this one joined, or fell back to, moves its own
				index.add(&store.Owned{Session: o.Session, Epoch: a.Epoch, TTL: m.ttl(o.Session)}, "")
			}
		case errors.As(err, &oe) && oe.Owner == node:
			rep.Skipped++ // node is back and holds it: its entry stays
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrAlreadyOwned), errors.As(err, &oe):
			rep.Skipped++ // its entry under node is stale
			index.add(nil, o.Session)
		default:
			rep.Failed++ // its entry stays: a later takeover tries again
			if len(rep.Errors) < 10 {
				rep.Errors = append(rep.Errors, fmt.Errorf("session %q: %w", o.Session, err))
			}
		}
	}
	// done is the final report: its duration is written under mu, which a
	// Progress tick running meanwhile copies the report under.
	done := func() TakeoverReport {
		mu.Lock()
		defer mu.Unlock()
		rep.Duration = time.Since(began)
		return rep
	}
	if opts.Progress != nil {
		// Once a second from a ticker of its own, so that it keeps coming
		// while adoptions stall (Cassandra slow or unreachable).
		tick := time.NewTicker(time.Second)
		stopTick := make(chan struct{})
		ticked := make(chan struct{})
		defer func() { close(stopTick); <-ticked }()
		go func() {
			defer close(ticked)
			defer tick.Stop()
			for {
				select {
				case <-stopTick:
					return
				case <-tick.C:
				}
				mu.Lock()
				r := rep
				r.Errors = slices.Clone(rep.Errors)
				mu.Unlock()
				r.Duration = time.Since(began)
				opts.Progress(r)
			}
		}()
	}
	for {
		o, state, ok := listed.next()
		if !ok {
			break
		}
		if err := pace.wait(loopCtx); err != nil {
			wg.Wait()
			err = stopped()
			return done(), err
		}
		// Counted once it is tried: a takeover stopped while pacing
		// accounts for every session it lists.
		mu.Lock()
		rep.Listed++
		mu.Unlock()
		claims <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			p := pipeline{state: state, fences: fences, claimed: func() { once.Do(func() { <-claims }) }}
			defer p.claimed()
			a, err := m.takeOne(ctx, node, o, opts.Force, p)
			if err == nil && opts.OnAdopted != nil {
				opts.OnAdopted(a)
			}
			record(o, a, err)
		}()
	}
	wg.Wait()
	if loopCtx.Err() != nil { // the listing stopped with it
		err := stopped()
		return done(), err
	}
	// (Sessions adopted the ordinary way, when the index lagged, move their
	// entries in the background, as any adoption does: Close waits for them.)
	index.finish()
	return done(), listed.err()
}

// A bulk takeover costs Cassandra the work of three requests a session: the
// claim (a lightweight transaction, which no two sessions can share), a
// read of the session's state and its fence. On a Cassandra bound by its
// CPU, what a request costs beyond its partitions' work (decoding,
// dispatching, answering it) is what a takeover can save, so the reads and
// the fences travel several sessions to a request:
//
//   - the states of the sessions listed are read readGroup to a request
//     (store.ReadStates) as the index is listed, ahead of their claims
//     (takeover_list.go; not those an adoption is working on: the
//     takeover joins it, and it reads its own). Neither the claim nor the
//     read waits for the other; the fence waits for both. Reading before
//     the claim restores what reading after it would: the fence shadows
//     every write of an older epoch, those that land between the read and
//     the claim included (see adopt);
//   - the fences of the sessions claimed leave fenceGroup to a request
//     (store.FenceSessions: each session's fence is still one partition
//     update, applied atomically), after waiting fenceWait at most for the
//     group to fill (takeover_fence.go).
//
// A claim slot is freed as soon as its claim has answered, so Concurrency
// claims stay in flight while the sessions claimed wait for their reads
// and fences.
//
// pipeline is one listed session's way through a takeover (or through a
// burst of woken adoptions, waitadopt.go): the read of its state started
// ahead of its claim (nil: read after the claim), the fencer its fence
// joins, what frees its claim slot (idempotent), and whether adopted moves
// its owner-index entry itself (a takeover moves its entries in batches)
// or, when index is set, has it moved with other sessions' (a burst).
type pipeline struct {
	state   stateWaiter
	fences  *fencer
	claimed func()
	reindex bool
	index   *indexMover
}

// stateWaiter is a read of a session's state started earlier. wait returns
// it, or ctx's error when ctx ends first (the read may serve other callers,
// on a context of its own).
type stateWaiter interface {
	wait(ctx context.Context) ([]store.Item, error)
}

// takeOne adopts one session the owner index lists under node. Takeover has
// already found node's lease expired, and the index names the epoch to claim
// at, so the claim is sent at once, its state read ahead with other
// sessions', without reading the ownership row or the lease again: a claim
// a session, and a share of a read and of a fence request. When the row has
// moved on (the index lags) and still names node, the session is adopted
// the ordinary way; when it names another node, that node has it. A forced takeover adopts the ordinary way. Should
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
	fences := m.stats.fences.Load() // before the lease is checked (see adopted)
	if !m.LeaseValid() {
		return nil, m.fencedErr()
	}
	if _, ok := m.Epoch(o.Session); ok {
		return nil, ErrAlreadyOwned
	}
	// An Adopt of the same session under way is joined (lookup), and looked
	// past should its caller's context end.
	v, err := m.lookup(ctx, o.Session, func() (any, error) { return m.claimListed(ctx, node, o, p, fences) }, nil)
	if err != nil {
		return nil, err
	}
	a := *v.(*Adopted)
	return &a, nil
}

// claimListed claims session o at the epoch the index lists under node (a
// node whose lease expired: it neither writes nor releases any more; for a
// woken adoption, the epoch of the row it read before waiting), then
// fences with the state read ahead (or, when that read failed, after the
// claim), as adopt does for a crashed owner: the fence shadows every older
// write that landed after the read, so the state restored is the state
// persisted. The session is reported adopted only once its fence landed; a
// session whose claim lost is not fenced. fences is the node's fence count
// read before its lease was found valid (see adopted).
func (m *Manager) claimListed(ctx context.Context, node string, o store.Owned, p pipeline, fences uint64) (*Adopted, error) {
	if _, ok := m.Epoch(o.Session); ok { // adopted by a caller this one joined late
		return nil, ErrAlreadyOwned
	}
	prev := store.Owner{Node: node, Epoch: o.Epoch}
	won, cur, err := m.store.Claim(ctx, o.Session, prev, m.cfg.NodeID, m.ttl(o.Session))
	switch {
	case err != nil:
		m.stats.adoptErrors.Add(1)
		return nil, err
	case !won && (cur.Epoch == 0 || cur.Ended):
		m.rememberAbsent(o.Session)
		m.stats.notFound.Add(1)
		return nil, ErrNotFound
	case !won && (cur.Node == node || cur.Node == m.cfg.NodeID):
		// Released, or the index lags; or a claim of this node's that
		// landed but failed (its reply lost, or its fence) and that this
		// node does not hold: adopted the ordinary way, claimed and fenced
		// again (a row naming this node is not another node's).
		return m.adopt(ctx, o.Session, AdoptOptions{}, fences)
	case !won:
		m.stats.claimConflicts.Add(1)
		return nil, &OwnedElsewhereError{Session: o.Session, Owner: cur.Node, Epoch: cur.Epoch, Raced: true}
	}
	p.claimed()
	var items []store.Item
	if p.state != nil {
		items, err = p.state.wait(ctx)
	}
	if p.state == nil || err != nil { // read after the claim instead
		items, err = m.store.ReadState(ctx, o.Session)
	}
	if err == nil {
		err = p.fences.fence(ctx, store.Fencing{Session: o.Session, Epoch: cur.Epoch, Items: items})
	}
	if err != nil {
		m.stats.adoptErrors.Add(1)
		return nil, err
	}
	a, err := m.adopted(o.Session, node, cur.Epoch, false, items, p.reindex, fences)
	if err != nil {
		return nil, err
	}
	if p.index != nil {
		a.reindexed = p.index.move(node, o.Session, cur.Epoch)
	}
	return a, nil
}

// pacer spaces a takeover's adoptions by its rate's interval, as a ticker
// would, but sets no timer when the next is already due (a takeover bound
// by its claims, not by its rate).
type pacer struct {
	every time.Duration
	next  time.Time
	timer *time.Timer
}

// wait returns once the next adoption is due, or ctx's error.
func (p *pacer) wait(ctx context.Context) error {
	now := time.Now()
	if d := p.next.Sub(now); d > 0 {
		if p.timer == nil {
			p.timer = time.NewTimer(d)
		} else {
			p.timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			p.timer.Stop()
			return ctx.Err()
		case <-p.timer.C:
		}
		now = p.next
	} else if err := ctx.Err(); err != nil {
		return err
	}
	p.next = now.Add(p.every)
	return nil
}
