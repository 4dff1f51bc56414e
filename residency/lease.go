package residency

import (
	"context"
	"sync"
	"time"
)

// renewLoop renews the lease every LeaseRenew (or at once when kicked). When a
// renewal fails and the next attempt would come after the lease expired, the
// node self-fences. When the previous renewal is already older than the lease
// TTL (the process was paused, or starved), the lease lapsed unseen and peers
// may have adopted its sessions: the node fences first, then renews and
// recovers, keeping only the sessions still its own.
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
		if time.Since(time.Unix(0, m.lastRenew.Load())) >= m.cfg.LeaseTTL && !m.Fenced() {
			m.fence()
		}
		renewed, safe := m.renew()
		switch {
		case renewed && m.Fenced():
			m.recover()
		case !safe && !m.Fenced():
			m.fence()
		}
	}
}

// renew writes the lease once. safe is false when it failed and the lease
// may lapse before the next attempt, a renewal period away.
func (m *Manager) renew() (renewed, safe bool) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.LeaseRenew)
	err := m.store.RenewLease(ctx, m.cfg.NodeID, m.cfg.LeaseTTL)
	cancel()
	if err == nil {
		m.lastRenew.Store(began.UnixNano())
		m.stats.renewals.Add(1)
		return true, true
	}
	m.stats.renewFailures.Add(1)
	age := time.Since(time.Unix(0, m.lastRenew.Load()))
	m.cfg.Logger.Warn("holdover: lease renewal failed", "node", m.cfg.NodeID, "since_last_renewal", age, "fenced", m.Fenced(), "err", err)
	return false, age+m.cfg.LeaseRenew < m.cfg.LeaseTTL
}

// LeaseValid reports whether this node may act as an owner now: it is not
// fenced and its last successful renewal started less than the lease TTL ago.
// When the lease has lapsed unseen (the process was paused), it asks the lease
// goroutine to fence and recover at once and returns false. It costs a clock
// read: call it per flush or per event, not per commit.
func (m *Manager) LeaseValid() bool {
	if m.Fenced() {
		return false
	}
	if time.Since(time.Unix(0, m.lastRenew.Load())) < m.cfg.LeaseTTL {
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
	m.mu.Lock()
	m.fenced = true
	sessions := make([]string, 0, len(m.owned))
	for s := range m.owned {
		sessions = append(sessions, s)
	}
	m.mu.Unlock()
	m.stats.fences.Add(1)
	if m.cfg.Flusher != nil {
		m.cfg.Flusher.Pause()
	}
	m.cfg.Logger.Error("holdover: lease lapsed, node self-fenced", "node", m.cfg.NodeID, "sessions", len(sessions))
	if m.cfg.OnFenced != nil {
		m.cfg.OnFenced(sessions)
	}
}

// recoverParallelism bounds the ownership reads a recovery keeps in flight.
const recoverParallelism = 32

// recover runs after a successful renewal while fenced: sessions whose
// ownership row still names this node at the same epoch stay owned; the rest
// (adopted by peers, or unreadable) are discarded from the buffer and
// forgotten. Then flushing resumes. The rows are read recoverParallelism at a
// time, and the lease is renewed meanwhile: a node owning many sessions must
// not let its lease lapse while it checks them. If a renewal fails so late
// that the lease may lapse, the recovery stops there and the node stays
// fenced; the next successful renewal recovers what is left.
func (m *Manager) recover() {
	check := m.ownedSnapshot()
	ids := make(chan string)
	var (
		mu   sync.Mutex
		lost []string
		wg   sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range min(recoverParallelism, len(check)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range ids {
				rctx, rcancel := context.WithTimeout(ctx, m.cfg.LeaseRenew)
				o, found, err := m.store.ReadOwner(rctx, s)
				rcancel()
				if ctx.Err() != nil {
					continue // abandoned: the session stays owned, checked next time
				}
				if err == nil && found && o.Node == m.cfg.NodeID && o.Epoch == check[s] {
					continue
				}
				m.forgetOwned(s, check[s])
				mu.Lock()
				lost = append(lost, s)
				mu.Unlock()
			}
		}()
	}
	renew := time.NewTicker(m.cfg.LeaseRenew)
	defer renew.Stop()
	aborted := false
feed:
	for s := range check {
		for sent := false; !sent; {
			select {
			case ids <- s:
				sent = true
			case <-renew.C:
				if _, safe := m.renew(); !safe {
					aborted = true
					break feed
				}
			}
		}
	}
	close(ids)
	if aborted {
		cancel()
	}
	wg.Wait()

	if m.cfg.Flusher != nil && len(lost) > 0 {
		m.cfg.Flusher.Discard(lost...)
	}
	kept := len(check) - len(lost)
	m.recoveredLost = append(m.recoveredLost, lost...)
	if aborted {
		m.cfg.Logger.Warn("holdover: recovery stopped, node stays fenced", "node", m.cfg.NodeID, "lost_so_far", len(m.recoveredLost))
		return
	}
	lost, m.recoveredLost = m.recoveredLost, nil
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

// leaseCache remembers peers' liveness for a short time, so a burst of events
// for a live peer's sessions costs one lease read.
type leaseCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]leaseEntry
}

type leaseEntry struct {
	live    bool
	expires time.Time
}

// Live reports whether node's lease is live, reading it from Cassandra at
// most once per LeaseCacheTTL.
func (m *Manager) Live(ctx context.Context, node string) (bool, error) {
	now := time.Now()
	m.leases.mu.Lock()
	e, ok := m.leases.m[node]
	m.leases.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.live, nil
	}
	_, live, err := m.store.ReadLease(ctx, node)
	if err != nil {
		return false, err
	}
	m.stats.leaseReads.Add(1)
	m.leases.mu.Lock()
	if len(m.leases.m) > 10000 {
		clear(m.leases.m)
	}
	m.leases.m[node] = leaseEntry{live: live, expires: now.Add(m.leases.ttl)}
	m.leases.mu.Unlock()
	return live, nil
}
