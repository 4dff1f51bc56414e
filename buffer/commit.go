package buffer

import "fmt"

// Commit records the changes of one committed transaction of a session. It never does
// I/O and never waits for a flush. The changes are applied whole or not at all: on
// ErrBufferFull, ErrOverloaded, ErrSessionTooLarge, ErrClosed or an input error (empty
// session ID or key, value over MaxValueLen) nothing was applied. Each key keeps only
// its latest change until the session's next flush. The buffer copies keys and values;
// the caller may reuse them when Commit returns. Keys may be up to MaxKeyLen bytes long.
func (b *Buffer) Commit(session string, changes ...Change) error {
	sh, err := b.lockShard(session)
	if err != nil {
		return err
	}
	s := sh.lookup(session)

	// Fast path: puts of same-sized values to dirty keys. Nothing but value bytes
	// changes, so no cap, trigger or schedule can change either.
	if s != nil {
		if b.overloadedFams.Load() != 0 && b.fams[s.fam].window.overloaded.Load() {
			return b.overloaded(sh, s.fam)
		}
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
	return b.commitSlow(sh, s, session, changes)
}

// commitSlow is Commit outside the fast path: a session the buffer holds nothing
// of (s is nil), a new key, a delete, a value of another size. sh is locked;
// commitSlow unlocks it.
func (b *Buffer) commitSlow(sh *shard, s *session, session string, changes []Change) error {
	// Validate and bound the growth first, so that the call applies whole or not at all.
	// Config.CheckSession and CheckChange see what the fast path above never meets
	// unchecked: a session the buffer holds nothing of, every change outside it.
	// Bad input is named before any refusal for load (see check), the family's
	// window bound included (checked first, it answered bad input ErrOverloaded,
	// which a host retries; found by review).
	if err := b.check(session, s == nil, changes); err != nil {
		sh.mu.Unlock()
		return err
	}
	f, err := b.family(sh, s, session)
	if err != nil {
		return err
	}
	var grow int64
	for i := range changes {
		c := &changes[i]
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
	fam := &b.fams[f]
	if fam.hardBytes != 0 && grow > 0 {
		if size := unflushedAfter(s, changes); size > fam.hardBytes {
			sh.fams[f].tooLarge++
			// Make room, as at the bound: what the session holds is
			// written now, so that a retry can succeed soon.
			hurried := s != nil && sh.hurry(s)
			sh.mu.Unlock()
			if hurried {
				b.kickNow()
			}
			return fam.tooLarge(session, size, s == nil || unflushedAfter(nil, changes) > fam.hardBytes)
		}
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
		s = sh.create(session, f)
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
	sh.fams[f].items += s.items.n - before
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
	if (s.items.n >= b.maxItems || s.bytes >= fam.maxSessionBytes) && sh.hurry(s) {
		kick = true
	}
	sh.mu.Unlock()
	if fresh && b.cfg.OnNew != nil {
		b.cfg.OnNew(session) // before a kick can start the session's flush
	}
	if kick {
		b.kickNow()
	}
	return nil
}

// check runs, on each change, Config.CheckChange, naming the change (the
// caller's limits, which name the field and the limit), then the buffer's
// own limits; then Config.CheckSession on a new session: an invalid change is never
// refused as a busy session (CheckSession may refuse a new session while
// creations are backed up, a "try again" no retry of an invalid change gets
// past), and a session check, which counts an admission, is made only for
// changes that can be applied.
func (b *Buffer) check(session string, fresh bool, changes []Change) error {
	for i := range changes {
		c := &changes[i]
		if b.cfg.CheckChange != nil {
			if err := b.cfg.CheckChange(c.Key, c.Value, c.Delete); err != nil {
				return fmt.Errorf("change %d: %w", i, err)
			}
		}
		if c.Key == "" || len(c.Key) > MaxKeyLen || !c.Delete && len(c.Value) > MaxValueLen {
			return changeError(i, c)
		}
	}
	if fresh && b.cfg.CheckSession != nil {
		return b.cfg.CheckSession(session)
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
	if fresh && b.cfg.CheckSession != nil { // bad input before a refusal for load
		if err := b.cfg.CheckSession(session); err != nil {
			sh.mu.Unlock()
			return err
		}
	}
	f, err := b.family(sh, s, session)
	if err != nil {
		return err
	}
	if fresh {
		if !b.reserve(sessionOverhead) {
			sh.refusals++
			sh.mu.Unlock()
			return ErrBufferFull
		}
		s = sh.create(session, f)
	}
	wasDirty := s.dirty()
	if n := s.items.n; n > 0 {
		b.held.Add(-s.bytes)
		sh.fams[f].items -= n
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

// dirtied schedules a session whose pending state just became non-empty, at the
// back of its family's due list. It reports whether the scheduler must be woken.
func (b *Buffer) dirtied(sh *shard, s *session, fresh bool) bool {
	now := b.now()
	s.first = now
	fs := sh.famOf(s)
	if fresh {
		fs.oldest.push(s)
	}
	fam := &b.fams[s.fam]
	due := now + fam.delay
	s.where = placeDue
	fs.due.pushBack(s, due)
	return due-fam.slack < b.wake.Load() || b.held.Load() > b.maxPending/2
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
// empty or the buffer is closed.
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
	return sh, nil
}

// family returns the family of s, or for a session the buffer holds nothing of (s
// nil) the family its ID matches, unless that family is overloaded (its
// MaxWindow): then it unlocks sh and returns the refusal. A session keeps the
// family it entered with, so the fast path matches no prefix.
func (b *Buffer) family(sh *shard, s *session, id string) (uint8, error) {
	var f uint8
	if s != nil {
		f = s.fam
	} else {
		f = b.match(id)
	}
	if b.overloadedFams.Load() != 0 && b.fams[f].window.overloaded.Load() {
		return 0, b.overloaded(sh, f)
	}
	return f, nil
}

// Overloaded returns the ErrOverloaded a Commit to session would get now
// because its family's unwritten changes would outlive the family's MaxWindow,
// or nil. It counts nothing and takes no lock: a host asks it before doing
// work for a new session that a Commit would refuse anyway.
func (b *Buffer) Overloaded(session string) error {
	if b.overloadedFams.Load() == 0 {
		return nil
	}
	if f := b.match(session); b.fams[f].window.overloaded.Load() {
		return b.fams[f].errOverloaded
	}
	return nil
}

// overloaded refuses a Commit or End of a session of family f while the family is
// overloaded. sh is locked; overloaded unlocks it.
func (b *Buffer) overloaded(sh *shard, f uint8) error {
	sh.fams[f].overloads++
	sh.mu.Unlock()
	return b.fams[f].errOverloaded
}
