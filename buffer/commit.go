package buffer

import "fmt"

// Commit records the changes of one committed transaction of a session. It never does
// I/O and never waits for a flush. The changes are applied whole or not at all: on
// ErrBufferFull, ErrOverloaded, ErrClosed or an input error (empty session ID or key, value over
// MaxValueLen) nothing was applied. Each key keeps only its latest change until the
// session's next flush. The buffer copies keys and values; the caller may reuse them
// when Commit returns. Keys may be up to MaxKeyLen bytes long.
func (b *Buffer) Commit(session string, changes ...Change) error {
	sh, err := b.lockShard(session)
	if err != nil {
		return err
	}
	s := sh.lookup(session)

	// Fast path: puts of same-sized values to dirty keys. Nothing but value bytes
	// changes, so no cap, trigger or schedule can change either.
	if s != nil {
		n := 0
		if len(changes) == 1 { // the common case, without rewrite's loops
			c := &changes[0]
			if e, _ := s.lookup(c.Key); e != nil && !c.Delete && int(e.n) == len(c.Value) {
				e.set(c.Value)
				n = 1
			}
		} else if len(changes) <= fastChanges {
			n = s.rewrite(changes)
		}
		if n > 0 {
			sh.commits++
			sh.changes += uint64(n)
			sh.coalesced += uint64(n)
			sh.mu.Unlock()
			return nil
		}
	}

	// Validate and bound the growth first, so that the call applies whole or not at all.
	// Config.CheckSession and CheckChange see what the fast path above never meets
	// unchecked: a session the buffer holds nothing of, every change outside it.
	if err := b.check(session, s == nil, changes); err != nil {
		sh.mu.Unlock()
		return err
	}
	var grow int64
	for i := range changes {
		c := &changes[i]
		if c.Key == "" || len(c.Key) > MaxKeyLen || len(c.Value) > MaxValueLen {
			sh.mu.Unlock()
			return changeError(i, c)
		}
		var e *entry
		if s != nil {
			e, _ = s.lookup(c.Key)
		}
		grow += growth(c, e)
	}
	if len(changes) == 0 {
		sh.mu.Unlock()
		return nil
	}
	fresh := s == nil
	if fresh {
		grow += sessionOverhead
	}
	if grow > 0 && !b.reserve(grow) {
		sh.refusals++
		sh.mu.Unlock()
		return ErrBufferFull
	}
	if fresh {
		s = sh.create(session)
	}

	wasDirty := s.dirty()
	before := s.items.n
	var delta int64
	for i := range changes {
		c := &changes[i]
		e, h := s.lookup(c.Key) // afresh: an earlier change of this call may have touched the key
		if e != nil {
			sh.coalesced++
		}
		delta += s.apply(c, e, h)
	}
	s.bytes += delta
	sh.items += s.items.n - before
	sh.commits++
	sh.changes += uint64(len(changes))
	if fresh {
		delta += sessionOverhead
	}
	if delta != grow {
		b.held.Add(delta - grow)
	}

	kick := false
	if !wasDirty {
		kick = b.dirtied(sh, s, fresh)
	}
	if s.where == placeDue && s.due != minDue &&
		(s.items.n >= b.maxItems || s.bytes >= b.maxSessionBytes) {
		sh.due.remove(s)
		sh.due.pushFront(s)
		kick = true
	}
	sh.mu.Unlock()
	if kick {
		b.kickNow()
	}
	return nil
}

// check runs Config.CheckSession on a new session and Config.CheckChange on
// changes, naming the change.
func (b *Buffer) check(session string, fresh bool, changes []Change) error {
	if fresh && b.cfg.CheckSession != nil {
		if err := b.cfg.CheckSession(session); err != nil {
			return err
		}
	}
	if b.cfg.CheckChange == nil {
		return nil
	}
	for i := range changes {
		if err := b.cfg.CheckChange(changes[i].Key, changes[i].Value, changes[i].Delete); err != nil {
			return fmt.Errorf("change %d: %w", i, err)
		}
	}
	return nil
}

// End ends a session: every pending item of it is superseded, and its next snapshot
// has Ended set, so the store deletes the session's partition before writing the
// items committed after the End. Like Commit it never waits; it returns ErrBufferFull
// only when the session had no unflushed state and the buffer is full.
func (b *Buffer) End(session string) error {
	sh, err := b.lockShard(session)
	if err != nil {
		return err
	}
	s := sh.lookup(session)
	fresh := s == nil
	if fresh && b.cfg.CheckSession != nil {
		if err := b.cfg.CheckSession(session); err != nil {
			sh.mu.Unlock()
			return err
		}
	}
	if fresh {
		if !b.reserve(sessionOverhead) {
			sh.refusals++
			sh.mu.Unlock()
			return ErrBufferFull
		}
		s = sh.create(session)
	}
	wasDirty := s.dirty()
	if n := s.items.n; n > 0 {
		b.held.Add(-s.bytes)
		sh.items -= n
		sh.coalesced += uint64(n)
		s.items.reset()
		s.bytes = 0
	}
	s.ended = true
	sh.ends++
	kick := false
	if !wasDirty {
		kick = b.dirtied(sh, s, fresh)
	}
	sh.mu.Unlock()
	if kick {
		b.kickNow()
	}
	return nil
}

// dirtied schedules a session whose pending state just became non-empty. It reports
// whether the scheduler must be woken.
func (b *Buffer) dirtied(sh *shard, s *session, fresh bool) bool {
	now := b.now()
	s.first = now
	if fresh {
		sh.oldest.push(s)
	}
	due := now + b.delay
	s.where = placeDue
	sh.due.pushBack(s, due)
	return due-b.slack < b.wake.Load() || b.held.Load() > b.maxPending/2
}

// reserve counts n more bytes against MaxPendingBytes, or reports false if they do
// not fit.
func (b *Buffer) reserve(n int64) bool {
	for {
		h := b.held.Load()
		if h+n > b.maxPending {
			return false
		}
		if b.held.CompareAndSwap(h, h+n) {
			if h <= b.maxPending/2 && h+n > b.maxPending/2 {
				b.kickNow() // cap pressure: flush everything dirty now
			}
			return true
		}
	}
}

var errEmptySession = fmt.Errorf("%w: session ID is empty", ErrInvalid)

func changeError(i int, c *Change) error {
	switch {
	case c.Key == "":
		return fmt.Errorf("%w: Change[%d].Key is empty", ErrInvalid, i)
	case len(c.Key) > MaxKeyLen:
		return fmt.Errorf("%w: Change[%d].Key is %d bytes; the limit is MaxKeyLen (%d)", ErrInvalid, i, len(c.Key), MaxKeyLen)
	}
	return fmt.Errorf("%w: Change[%d].Value is %d bytes; the limit is MaxValueLen (%d)", ErrInvalid, i, len(c.Value), MaxValueLen)
}

// lockShard returns the session's shard, locked, unless the session ID is
// empty, the buffer is closed, or it is overloaded (Config.MaxWindow).
func (b *Buffer) lockShard(session string) (*shard, error) {
	if session == "" {
		return nil, errEmptySession
	}
	sh := b.shardOf(session)
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return nil, ErrClosed
	}
	if b.window.overloaded.Load() {
		sh.overloads++
		sh.mu.Unlock()
		return nil, ErrOverloaded
	}
	return sh, nil
}
