package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// markFailed stops new load to n and parks its sessions. The earliest
// failure time wins.
func (g *Generator) markFailed(n *nodeState, at time.Time) {
	g.mu.Lock()
	if !n.failed.Load() {
		n.failedAt = at
		if g.stats.firstFailed.IsZero() {
			g.stats.firstFailed = at
			g.stats.ackedAtFailure = g.stats.acked
		}
		g.stats.failed = append(g.stats.failed, n.Name)
	}
	n.failed.Store(true)
	g.mu.Unlock()
	for _, s := range g.sessions {
		if int(s.node.Load()) == n.index {
			s.parked.Store(true)
		}
	}
}

// Redirect declares the node named node failed at failedAt and moves its
// sessions to the surviving nodes, round robin. Each session is adopted with
// GET /v1/sessions/{id}?adopt=true and checked against the model (see the
// package comment); a 409 naming the failed node (its lease not yet expired)
// or a transient error is retried with backoff until Config.AdoptTimeout
// after failedAt. Restored sessions then take load on their new node;
// sessions neither restored nor found absent in time count as Unrestored.
//
// Call it while Run is running, once the node is really down (Run calls it
// itself after Failure.Fail). failedAt should be no later than the moment
// the node stopped: events acknowledged before failedAt minus the window
// must survive. Redirect returns when every session of the node is settled,
// or with ctx's error.
func (g *Generator) Redirect(ctx context.Context, node string, failedAt time.Time) error {
	return g.redirect(ctx, node, failedAt, failedAt)
}

// redirect is Redirect with the failover clock started at down: when the
// node was seen down, which Failure.Fail's hook may leave later than
// failedAt (it can wait before it fails the node). The failover times,
// LeaseWait and AdoptTimeout count from down; the window from failedAt.
func (g *Generator) redirect(ctx context.Context, node string, failedAt, down time.Time) error {
	if !g.started.Load() {
		return errors.New("loadgen: Redirect before Run")
	}
	select {
	case <-g.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	n := g.node(node)
	if n == nil {
		return fmt.Errorf("loadgen: Redirect: no node named %q", node)
	}
	g.markFailed(n, failedAt)
	g.mu.Lock()
	if g.stats.firstDown.IsZero() || down.Before(g.stats.firstDown) {
		g.stats.firstDown = down
	}
	g.mu.Unlock()
	var survivors []*nodeState
	for _, o := range g.nodes {
		if !o.failed.Load() {
			survivors = append(survivors, o)
		}
	}
	if len(survivors) == 0 {
		return fmt.Errorf("loadgen: Redirect %s: no surviving node", node)
	}
	var moving []*session
	for _, s := range g.sessions {
		if int(s.node.Load()) == n.index && s.parked.Load() && !s.broken.Load() {
			moving = append(moving, s)
		}
	}
	window := g.window(n, 0)
	g.mu.Lock()
	g.stats.redirected += len(moving)
	g.stats.window = max(g.stats.window, window)
	for _, s := range moving {
		g.stats.fams[s.fam].redirected++
	}
	for k := range g.stats.fams {
		g.stats.fams[k].window = max(g.stats.fams[k].window, g.window(n, k))
	}
	g.mu.Unlock()
	g.logf("redirecting %d sessions of %s to %d survivor(s); window=%v (flush delay %v + allowance %v)%s",
		len(moving), n.Name, len(survivors), window, n.flushDelay, g.cfg.WindowAllowance, g.familyWindows(n))

	t0 := time.Now()
	deadline := down.Add(g.cfg.AdoptTimeout)
	sem := make(chan struct{}, g.cfg.RedirectParallelism)
	var wg sync.WaitGroup
	for i, s := range moving {
		wg.Add(1)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Done()
			wg.Wait()
			return ctx.Err()
		}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.mu.Lock() // waits for an event still in flight to the failed node
			defer s.mu.Unlock()
			g.adopt(ctx, s, survivors[i%len(survivors)], n, failedAt, down, failedAt.Add(-g.window(n, s.fam)), deadline)
		}()
	}
	wg.Wait()

	g.mu.Lock()
	st := &g.stats
	summary := fmt.Sprintf("adopted=%d not_found=%d unrestored=%d lost_beyond_window=%d corrupt=%d lease_wait=%v adopt_retries=%d adopt_p50_ms=%.1f adopt_p99_ms=%.1f failover_p50_ms=%.0f failover_p99_ms=%.0f failover_max_ms=%.0f",
		st.adopted, st.notFound, st.unrestored, st.lostBeyond, st.corrupt, st.leaseWait().Round(time.Millisecond),
		st.adoptRetries, ms(st.adopt.quantile(0.5)), ms(st.adopt.quantile(0.99)),
		ms(st.failover.quantile(0.5)), ms(st.failover.quantile(0.99)), ms(st.failover.max()))
	g.mu.Unlock()
	g.logf("redirect of %s done in %v: %s", n.Name, time.Since(t0).Round(time.Millisecond), summary)
	return ctx.Err()
}

// adopt restores s on target, retrying until deadline; s.mu is held. Its
// failover time counts from down.
func (g *Generator) adopt(ctx context.Context, s *session, target, failed *nodeState, failedAt, down, cutoff, deadline time.Time) {
	required := s.m.ackedBy(cutoff)
	backoff := 25 * time.Millisecond
	// served records the failover time of s: from the failure to the first
	// answer a survivor gave for it (its state, or that it has none).
	served := func(now time.Time) {
		d := now.Sub(down)
		g.stats.failover.record(d)
	}
	for {
		t0 := time.Now()
		rep, err := g.cl.session(ctx, target.URL, s.id, true)
		now := time.Now()
		switch {
		case err == nil:
			c := s.m.reconcile(int(rep.Version), stateOf(rep), required, now)
			g.mu.Lock()
			g.stats.adopted++
			g.stats.fams[s.fam].adopted++
			g.stats.adopt.record(now.Sub(t0))
			served(now)
			if g.stats.firstAdopt.IsZero() || now.Before(g.stats.firstAdopt) {
				g.stats.firstAdopt = now
			}
			g.mu.Unlock()
			g.settle(s, target, c, failedAt)
			return
		case isStatus(err, 404):
			c := s.m.reconcile(0, sessionState{}, required, now)
			g.mu.Lock()
			g.stats.notFound++
			g.stats.fams[s.fam].notFound++
			served(now)
			g.mu.Unlock()
			g.settle(s, target, c, failedAt)
			return
		}
		var he *httpError
		switch {
		case errors.As(err, &he) && he.Status == 409 && he.Owner == failed.id:
			g.mu.Lock()
			g.stats.adoptRetries++ // the failed node's lease is still live
			g.mu.Unlock()
		case errors.As(err, &he) && he.Status == 409 && g.nodeByID(he.Owner) != nil && !g.nodeByID(he.Owner).failed.Load():
			g.countErr("adopt_owned_by_survivor", nil)
			target = g.nodeByID(he.Owner) // another survivor has it: restore from there
			if ctx.Err() == nil && time.Now().Before(deadline) {
				continue // at once, but no longer than the deadline: survivors naming each other must not loop for good
			}
		case ctx.Err() != nil:
			return
		default:
			g.countErr("adopt_"+errorKind(err), err)
		}
		if now := time.Now(); now.Add(backoff).After(deadline) {
			s.broken.Store(true)
			g.mu.Lock()
			g.stats.unrestored++
			// No survivor served it: its failover time is at least the
			// wait given up now, and must not drop out of the figures.
			served(now)
			g.mu.Unlock()
			g.logf("UNRESTORED session %s: last answer from %s: %v", s.id, target.Name, err)
			return
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		// Short retries: a session is served within this much of the
		// failed node's lease running out (the failover time measures it).
		backoff = min(2*backoff, g.cfg.AdoptRetryMax)
	}
}

// settle accounts a redirected session's check and hands it to its new node.
func (g *Generator) settle(s *session, target *nodeState, c check, failedAt time.Time) {
	g.account(s, c, "adopted by "+target.Name, failedAt)
	s.resync = false
	s.node.Store(int32(target.index))
	s.parked.Store(false)
}
