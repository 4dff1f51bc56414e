package residency

import (
	"context"
	"time"
)

// refreshLoop keeps the sessions this node owns from expiring while they are
// resident: ownership rows, index entries and state items all carry
// their session's TTL (OwnershipTTL, or OwnershipTTLOf's), and only changed
// items are rewritten by flushes.
func (m *Manager) refreshLoop() {
	defer close(m.refreshDone)
	t := time.NewTicker(m.cfg.RefreshEvery)
	defer t.Stop()
	since := map[string]time.Time{} // when this loop last renewed (or first saw) each session
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		if m.Fenced() {
			continue
		}
		now := time.Now()
		owned := m.ownedSnapshot()
		for s := range since {
			if _, ok := owned[s]; !ok {
				delete(since, s)
			}
		}
		for s, e := range owned {
			first, seen := since[s]
			if !seen {
				since[s] = now
				continue
			}
			if now.Sub(first) < m.ttl(s)/2 {
				continue
			}
			if m.refresh(s, e) {
				since[s] = now
			}
			select {
			case <-m.stop:
				return
			default:
			}
		}
	}
}

// ttl is the TTL of session's ownership row, index entry and items.
func (m *Manager) ttl(session string) time.Duration {
	if m.cfg.OwnershipTTLOf != nil {
		if d := m.cfg.OwnershipTTLOf(session); d > 0 {
			return d
		}
	}
	return m.cfg.OwnershipTTL
}

// refreshStateTimeout bounds the renewal of one session's items, which reads
// the whole session and rewrites what is due: far longer than a lease
// renewal (LeaseRenew bounds the ownership row's compare-and-set), for a
// session of many items on a busy node would otherwise fail it every time,
// and its items expire while it is resident. The refresh loop is no lease's
// keeper: a slow pass only delays the next session's turn.
const refreshStateTimeout = 30 * time.Second

// refresh renews one session's TTLs; it reports whether it succeeded.
func (m *Manager) refresh(session string, epoch uint64) bool {
	ctx, cancel := context.WithTimeout(m.refreshCtx, max(m.cfg.LeaseRenew, refreshStateTimeout))
	defer cancel()
	rowCtx, rowCancel := context.WithTimeout(ctx, m.cfg.LeaseRenew)
	defer rowCancel()
	ttl := m.ttl(session)
	ok, err := m.store.RefreshOwner(rowCtx, session, m.cfg.NodeID, epoch, ttl)
	if err != nil {
		m.cfg.Logger.Warn("holdover: ownership TTL not renewed", "session", session, "err", err)
		return false
	}
	if !ok {
		// Another node adopted it: nothing of ours can become visible any
		// more. Unless this node no longer holds it at that epoch: ended,
		// started again or raised by a recovery while the refresh ran, it
		// is not lost. Nor is a session whose End is being recorded, or
		// whose End record failed (EndInDoubt): the row is ended by this
		// node's own End, and the changes committed since wait for the
		// flush that records the End and owns the session afresh.
		if m.EndInDoubt(session) {
			return false
		}
		if !m.forgetOwned(session, epoch) {
			return false
		}
		m.stats.lost.Add(1)
		if m.cfg.Flusher != nil {
			m.cfg.Flusher.Discard(session)
		}
		m.cfg.Logger.Warn("holdover: an owned session was adopted by another node", "session", session)
		return false
	}
	// Renew every item that has lost a quarter of its TTL: one that keeps
	// three quarters now still has a quarter left at the next renewal, half a
	// TTL from now.
	if _, err := m.store.RefreshState(ctx, session, ttl*3/4); err != nil {
		m.cfg.Logger.Warn("holdover: state TTL not renewed", "session", session, "err", err)
		return false
	}
	if err := m.store.IndexOwner(ctx, m.cfg.NodeID, session, epoch, ttl); err != nil {
		m.cfg.Logger.Warn("holdover: owner index TTL not renewed", "session", session, "err", err)
	}
	m.stats.refreshes.Add(1)
	return true
}
