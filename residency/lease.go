package residency

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/holdover/holdover/internal/store"
)

// renewLoop renews the lease every LeaseRenew (or at once when kicked). A
// renewal that does not answer is backed by further attempts until one
// succeeds or the lease runs out; only then does the node fence. A renewal
// that succeeds after the lease ran out (the process was paused, or every
// attempt was slow) also fences: peers may have seen the lease expire and
// adopted sessions meanwhile. Once renewed, a fenced node recovers, keeping
// only the sessions still its own.
func (m *Manager) renewLoop() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.LeaseRenew)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		case <-m.kick:
		}
		if m.replaced.Load() {
			continue // another process holds the node ID: never renew again
		}
		if m.leaseAge() >= m.cfg.hold() && !m.Fenced() {
			m.fence()
		}
		renewed, lapsed := m.renew()
		if lapsed {
			clear(m.settled) // peers may have adopted what a recovery had settled
		}
		if (lapsed || m.leaseAge() >= m.cfg.hold()) && !m.Fenced() {
			m.fence()
		}
		if renewed && m.Fenced() {
			m.recover()
		}
	}
}

// elapsed is the monotonic time since the manager was made.
func (m *Manager) elapsed() time.Duration { return time.Since(m.started) }

// leaseAge is the time since the last successful renewal started.
func (m *Manager) leaseAge() time.Duration {
	return m.elapsed() - time.Duration(m.lastRenew.Load())
}

// renewAttempts bounds the renewal attempts in flight at once.
const renewAttempts = 4

// renew writes the lease. Attempts start every LeaseRenew/3 while none has
// succeeded (earlier ones keep running: the first to succeed counts), until
// the lease runs out, or for one renewal period when the node is fenced or
// the lease already ran out. lapsed reports a renewal that succeeded only
// after the previous one's lease ended.
func (m *Manager) renew() (renewed, lapsed bool) {
	prev := time.Duration(m.lastRenew.Load())
	now := m.elapsed()
	end := prev + m.cfg.hold()
	if m.Fenced() || end <= now {
		end = now + m.cfg.LeaseRenew
	}
	// A valid lease is renewed with this process's incarnation (it must
	// not expire before the row); a fenced or lapsed one without, so that a
	// successor that took the node ID over keeps it (holdsLease decides).
	inc := m.incarnation
	if m.Fenced() || prev+m.cfg.hold() <= now {
		inc = ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), end-now)
	defer cancel()
	type result struct {
		began time.Duration
		err   error
	}
	results := make(chan result, renewAttempts)
	inFlight := 0
	launch := func() {
		inFlight++
		began := m.elapsed()
		go func() {
			err := m.store.RenewLease(ctx, m.cfg.NodeID, m.cfg.hold(), m.cfg.MaxClockSkew, m.sinceTime(), inc)
			results <- result{began, err}
		}()
	}
	launch()
	again := time.NewTicker(max(m.cfg.LeaseRenew/3, 10*time.Millisecond))
	defer again.Stop()
	var lastErr error
	for {
		select {
		case r := <-results:
			inFlight--
			if r.err == nil {
				acked := m.elapsed()
				for cur := m.lastRenew.Load(); int64(r.began) > cur && !m.lastRenew.CompareAndSwap(cur, int64(r.began)); cur = m.lastRenew.Load() {
				}
				m.stats.renewals.Add(1)
				return true, acked-prev >= m.cfg.hold()
			}
			m.stats.renewFailures.Add(1)
			lastErr = r.err
		case <-again.C:
			if inFlight < renewAttempts && ctx.Err() == nil {
				launch()
			}
		case <-m.stop:
			return false, false
		}
		if inFlight == 0 && ctx.Err() != nil {
			m.cfg.Logger.Warn("holdover: lease renewal failed", "node", m.cfg.NodeID, "since_last_renewal", m.leaseAge(), "fenced", m.Fenced(), "err", lastErr)
			return false, false
		}
	}
}

// LeaseValid reports whether this node may act as an owner now: it is not
// fenced and its last successful renewal started less than LeaseTTL -
// MaxClockSkew ago (on the monotonic clock). When the lease has lapsed
// unseen (the process was paused), it asks the lease goroutine to fence and
// recover at once and returns false. It costs a clock read: call it per
// flush or per event, not per commit.
func (m *Manager) LeaseValid() bool {
	if m.Fenced() {
		return false
	}
	if m.leaseAge() < m.cfg.hold() {
		return true
	}
	select {
	case m.kick <- struct{}{}:
	default:
	}
	return false
}

// fence stops this node from acting as an owner: flushing pauses and the host
// is told which sessions it may have lost.
func (m *Manager) fence() {
	clear(m.settled)
	m.mu.Lock()
	m.fenced = true
	sessions := make([]string, 0, len(m.owned))
	for s := range m.owned {
		sessions = append(sessions, s)
	}
	// Counted under the lock: a session held after this (holdUnlessFenced)
	// is held only by work that began after it.
	m.stats.fences.Add(1)
	m.mu.Unlock()
	// A recording under way now ends in ErrCreationLapsed: a session started
	// again after recovery must not join it, but record itself afresh.
	m.preparing.Clear()
	m.doubtful.Clear() // the fence discards the sessions not recorded yet
	if m.cfg.Flusher != nil {
		m.cfg.Flusher.Pause()
		// New sessions not recorded yet: peers see none of them, so while this
		// node is fenced an event for one is sent elsewhere and started afresh
		// there. Writing them after recovery would race that fresh start and
		// could drop its acknowledged writes: a fenced node counts as failed
		// for what it cannot prove is its own, and these are lost with it.
		var unrecorded []string
		for _, s := range m.cfg.Flusher.PendingSessions() {
			if _, ok := m.Epoch(s); !ok {
				unrecorded = append(unrecorded, s)
			}
		}
		if len(unrecorded) > 0 {
			m.cfg.Flusher.Discard(unrecorded...)
			m.recoveredLost = append(m.recoveredLost, unrecorded...)
			sessions = append(sessions, unrecorded...)
		}
	}
	m.cfg.Logger.Error("holdover: lease lapsed, node self-fenced", "node", m.cfg.NodeID, "sessions", len(sessions))
	if m.cfg.OnFenced != nil {
		m.cfg.OnFenced(sessions)
	}
}

// recoverParallelism bounds the ownership claims a recovery keeps in flight.
const recoverParallelism = 32

// recover runs after a successful renewal while fenced. Each session this node
// owned is settled with a compare-and-set that moves its ownership row from
// this node's epoch to the next: if it applies, the session is still this
// node's and any peer's claim based on the old epoch now fails; if the row
// moved on (a peer adopted it, or it ended or expired), the session is
// discarded from the buffer and forgotten. A session whose claim fails with
// an error is neither: it stays owned and unwritten, and the node stays fenced
// until a later recovery settles it. The claims run recoverParallelism at a
// time, and the lease is renewed meanwhile: a node owning many sessions must
// not let its lease lapse while it settles them. If a renewal fails so late
// that the lease may lapse, the recovery stops there and the node stays
// fenced; the next successful renewal settles what is left.
func (m *Manager) recover() {
	if !m.holdsLease() {
		return
	}
	check := m.ownedSnapshot()
	for s := range m.settled {
		delete(check, s)
	}
	ids := make(chan string)
	var (
		mu        sync.Mutex
		lost      []string
		given     map[string]uint64 // claimed back after ReleaseAll gave them up
		unsettled int
		wg        sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(m.refreshCtx) // Close ends the claims
	defer cancel()
	for range min(recoverParallelism, len(check)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range ids {
				e := check[s]
				rctx, rcancel := context.WithTimeout(ctx, m.cfg.LeaseRenew)
				won, cur, err := m.store.Claim(rctx, s, store.Owner{Node: m.cfg.NodeID, Epoch: e}, m.cfg.NodeID, m.ttl(s))
				rcancel()
				mu.Lock()
				switch {
				case ctx.Err() != nil:
					unsettled++ // abandoned: checked next time
				case err != nil:
					unsettled++
					m.cfg.Logger.Warn("holdover: ownership not settled, node stays fenced", "session", s, "err", err)
				case won, cur.Node == m.cfg.NodeID && !cur.Ended && cur.Epoch > e:
					// Won, or won by an earlier claim of this recovery whose
					// reply was lost: only this process holds the node ID.
					m.raiseOwned(s, e, cur.Epoch)
					m.settled[s] = true
					if r, ok := m.releasing.Load(s); ok && r.(uint64) == e {
						if _, held := m.Epoch(s); !held {
							// ReleaseAll released the row while the claim
							// was on its way: the claim took it back.
							if given == nil {
								given = map[string]uint64{}
							}
							given[s] = cur.Epoch
						}
					}
				case cur.Ended && cur.Epoch == e+1 && m.EndInDoubt(s):
					// Ended by this node's own End, whose record is on its
					// way or lost its reply: nobody adopted it, and the
					// changes committed since wait for the flush that
					// records the End and owns the session afresh (as the
					// refresh loop keeps it).
					m.settled[s] = true
				default:
					m.forgetOwned(s, e)
					m.settled[s] = false
					lost = append(lost, s)
				}
				mu.Unlock()
			}
		}()
	}
	renew := time.NewTicker(m.cfg.LeaseRenew)
	defer renew.Stop()
	aborted, relapsed := false, false
feed:
	for s := range check {
		for sent := false; !sent; {
			select {
			case ids <- s:
				sent = true
			case <-renew.C:
				if renewed, lapsed := m.renew(); !renewed || lapsed {
					relapsed = lapsed // settled is cleared once the claims have stopped
					aborted = true
					break feed
				}
			case <-m.stop: // Close: the node stays fenced
				aborted = true
				break feed
			}
		}
	}
	close(ids)
	if aborted {
		cancel()
	}
	wg.Wait()
	for s, e := range given {
		rctx, rcancel := context.WithTimeout(m.refreshCtx, m.cfg.LeaseRenew)
		if _, err := m.store.Release(rctx, s, m.cfg.NodeID, e, m.ttl(s)); err != nil {
			m.cfg.Logger.Warn("holdover: released session not released again after recovery; peers adopt it when the lease expires", "session", s, "err", err)
		}
		rcancel()
	}
	if relapsed {
		clear(m.settled) // peers may have adopted what was settled
	}

	if m.cfg.Flusher != nil && len(lost) > 0 {
		m.cfg.Flusher.Discard(lost...)
	}
	m.recoveredLost = append(m.recoveredLost, lost...)
	if m.leaseAge() >= m.cfg.hold() {
		// The lease ran out while the last claims ran: peers may adopt what
		// was settled. Settle everything again after the next renewal.
		clear(m.settled)
		aborted = true
	}
	if aborted || unsettled > 0 {
		m.cfg.Logger.Warn("holdover: recovery incomplete, node stays fenced", "node", m.cfg.NodeID,
			"unsettled", unsettled, "lost_so_far", len(m.recoveredLost))
		return
	}
	lost, m.recoveredLost = m.recoveredLost, nil
	kept := 0
	for _, k := range m.settled {
		if k {
			kept++
		}
	}
	clear(m.settled)
	m.mu.Lock()
	m.fenced = false
	m.mu.Unlock()
	if m.cfg.Flusher != nil {
		m.cfg.Flusher.Resume()
	}
	m.cfg.Logger.Info("holdover: lease renewed, node unfenced", "node", m.cfg.NodeID, "kept", kept, "lost", len(lost))
	if m.cfg.OnRecovered != nil {
		m.cfg.OnRecovered(lost)
	}
}

// holdsLease checks, before a recovery, that this process still holds the
// node ID's lease: while it was paused past its lease another process with
// the same node ID may have taken it over (Start), and then this one must
// stay fenced for good. It retakes a lease that expired meanwhile.
func (m *Manager) holdsLease() bool {
	ctx, cancel := context.WithTimeout(m.refreshCtx, m.cfg.LeaseRenew) // Close ends it
	defer cancel()
	// A new unbroken lease begins here: every session this node keeps, the
	// recovery that follows claims again, after this moment. A recovery
	// that settled some sessions and stopped keeps its beginning: those it
	// will not claim again were claimed after it, and the lease has not
	// lapsed since (a lapse clears settled).
	if len(m.settled) == 0 {
		m.since.Store(m.wall().UnixNano())
	}
	held, cur, err := m.store.CheckLease(ctx, m.cfg.NodeID, m.incarnation, m.cfg.hold(), m.cfg.MaxClockSkew, m.sinceTime())
	if err == nil && !held && (cur.Incarnation == "" || cur.Incarnation == m.incarnation) {
		// Expired (or renewed after it expired, which leaves no holder):
		// take it again unless someone else does first.
		var l store.Lease
		var found bool
		if l, found, err = m.store.ReadLease(ctx, m.cfg.NodeID); err == nil {
			cur = l
			if !found || l.Incarnation == "" {
				held, cur, err = m.store.TakeLease(ctx, m.cfg.NodeID, m.incarnation, l, found, m.cfg.hold(), m.cfg.MaxClockSkew, m.sinceTime())
			}
		}
	}
	switch {
	case err != nil:
		m.cfg.Logger.Warn("holdover: lease not checked, node stays fenced", "node", m.cfg.NodeID, "err", err)
		return false
	case held:
		return true
	case cur.Incarnation != "" && cur.Incarnation != m.incarnation:
		m.replaced.Store(true)
		m.cfg.Logger.Error("holdover: another process took over this node ID while this one was paused; staying fenced for good",
			"node", m.cfg.NodeID, "incarnation", m.incarnation, "successor", cur.Incarnation)
	}
	return false
}

// fencedErr is the error for acting as owner without a valid lease.
func (m *Manager) fencedErr() error {
	if m.replaced.Load() {
		return ErrReplaced
	}
	return ErrFenced
}

// leaseCache remembers until when peers' leases were seen live, so a burst of
// events for a live peer's sessions costs one lease read.
//
// It also remembers, per peer, when the newest read that found its lease
// expired was sent (expired). That does not say the lease is still expired:
// the peer may have renewed since and recovered its sessions. But a peer
// claims a session (creates, adopts or recovers it) only while its lease is
// valid, so a claim stamped before that read was sent was made before the
// lapse the read saw; if the claim is still current (the compare-and-set on
// its epoch decides), the peer has not recovered the session since, and it
// may be adopted without reading the lease again (see vouched).
type leaseCache struct {
	ttl     time.Duration
	mu      sync.Mutex
	m       map[string]liveLease
	expired map[string]time.Time // peer -> wall time a read that found its lease expired was sent
}

// liveLease is a peer's lease seen live: until when the cache trusts it (at
// most ends), when the lease ends unless renewed (both on this process's
// clock), and when the peer's current unbroken lease began
// (store.Lease.Since).
type liveLease struct{ until, ends, since time.Time }

// vouched reports whether node's lease was seen expired by a read sent more
// than twice MaxClockSkew after claimedAt (the claimer's wall clock when it
// claimed the session): the claim predates the lapse, so Adopt need not read
// the lease again. A lease read that finds node live forgets the record.
func (m *Manager) vouched(node string, claimedAt time.Time) bool {
	if claimedAt.IsZero() {
		return false
	}
	m.leases.mu.Lock()
	seen, ok := m.leases.expired[node]
	m.leases.mu.Unlock()
	return ok && claimedAt.Add(2*m.cfg.MaxClockSkew).Before(seen)
}

// Live reports whether node's lease is live (Lease.LiveAt with MaxClockSkew),
// reading it from Cassandra unless it was seen live less than LeaseCacheTTL
// ago.
func (m *Manager) Live(ctx context.Context, node string) (bool, error) {
	live, _, err := m.liveLease(ctx, node)
	return live, err
}

// sharedLease is liveLease for adoptions: concurrent callers for one peer
// share one read. A shared read may have been sent before the caller read
// the session's ownership row, so an expiry it finds counts for a session
// only if vouched says so (the claim predates the read); otherwise the
// caller reads the lease itself, after its ownership read. A dead node's
// sessions are adopted all at once when its lease ends (AdoptOptions.Wait
// wakes them together), and each read of the lease of its own loaded
// Cassandra in the very moment the claims needed it.
func (m *Manager) sharedLease(ctx context.Context, node string, claimedAt time.Time) (bool, liveLease, error) {
	type read struct {
		live bool
		l    liveLease
	}
	// The read is shared, so no one caller's context ends it; each caller
	// stops waiting for it when its own context ends.
	ch := m.leaseFlight.DoChan(node, func() (any, error) {
		live, l, err := m.liveLease(context.WithoutCancel(ctx), node)
		return read{live, l}, err
	})
	var res singleflight.Result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return false, liveLease{}, ctx.Err()
	}
	if res.Err != nil {
		return false, liveLease{}, res.Err
	}
	r := res.Val.(read)
	if r.live || m.vouched(node, claimedAt) {
		return r.live, r.l, nil
	}
	return m.liveLease(ctx, node)
}

// liveLease is Live, also returning, for a live lease, how long it is
// trusted, when it ends and when it began (zero when unknown).
func (m *Manager) liveLease(ctx context.Context, node string) (bool, liveLease, error) {
	now := time.Now()
	m.leases.mu.Lock()
	c, ok := m.leases.m[node]
	m.leases.mu.Unlock()
	if ok && now.Before(c.until) {
		return true, c, nil
	}
	sent := m.wall()
	l, found, err := m.store.ReadLease(ctx, node)
	if err != nil {
		return false, liveLease{}, err
	}
	m.stats.leaseReads.Add(1)
	live := found && l.LiveAt(m.wall(), m.cfg.MaxClockSkew)
	m.leases.mu.Lock()
	if len(m.leases.m) > 10000 {
		clear(m.leases.m)
	}
	if len(m.leases.expired) > 10000 {
		clear(m.leases.expired)
	}
	if live {
		// Until the cache TTL, or the lease's end if sooner.
		left := l.Ends(m.cfg.MaxClockSkew).Sub(m.wall())
		c = liveLease{until: now.Add(min(m.leases.ttl, left)), ends: now.Add(left), since: l.Since}
		m.leases.m[node] = c
		delete(m.leases.expired, node)
	} else {
		delete(m.leases.m, node)
		if sent.After(m.leases.expired[node]) {
			m.leases.expired[node] = sent
		}
	}
	m.leases.mu.Unlock()
	if !live {
		return false, liveLease{}, nil
	}
	return true, c, nil
}
