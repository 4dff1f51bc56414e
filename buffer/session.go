package buffer

// place tells where a session stands in the flush pipeline. A session has unflushed
// state (is dirty or flying) exactly while it is in its shard's table; a dirty session
// is always in one of placeDue, placeReady, placeHeld or placeBackoff.
type place uint8

const (
	placeNone    place = iota // clean, or flying with nothing new
	placeDue                  // in the shard's due list
	placeReady                // handed to the ready queue; a worker will snapshot it
	placeHeld                 // due while flying: flush again as soon as the flight lands
	placeBackoff              // waiting in the retry heap after a transient error
	placeGone                 // removed from the table; stale queue entries skip it
)

// A session is the pending state of one session ID. All fields are guarded by the
// shard's mutex. The state being flushed is not here: a snapshot moves the whole
// item table to its flight.
type session struct {
	id    string
	sh    *shard
	items itemTable // latest pending change of each dirty key
	bytes int64     // size of items as counted against the caps
	first int64     // when the pending state became dirty (buffer time)

	due      int64
	prev     *session // due list links
	next     *session
	flyFirst int64 // first of the flying snapshot, while flying
	flyBytes int64 // bytes of the flying snapshot, while flying (for the family's hard bound)
	gen      uint64
	landed   uint64 // gen of the last snapshot written or dropped
	heapIdx  int32
	attempt  int32 // failed attempts since the last success
	lastErr  error // last transient error, for Close's report
	waits    []flushWait
	where    place
	fam      uint8 // index in Buffer.fams, decided when the session entered the table
	ended    bool  // End was called since the last snapshot
	flying   bool
	dropFly  bool // Discard was called during the flight: put nothing back
}

func (s *session) dirty() bool { return s.items.n > 0 || s.ended }

// oldestKey is the time of the session's oldest unflushed change.
func (s *session) oldestKey() int64 {
	if s.flying {
		return s.flyFirst
	}
	return s.first
}

// lookup returns the pending entry of key, and the key's hash.
func (s *session) lookup(key string) (*entry, uint64) {
	h := s.sh.hash(key)
	return s.items.get(key, h), h
}

// fastChanges is the largest transaction Commit tries on its fast path.
const fastChanges = 8

// rewrite applies changes (at most fastChanges) if each is a put of a value of the same
// size as its key's pending value, and returns how many it applied: all or none.
func (s *session) rewrite(changes []Change) int {
	var es [fastChanges]*entry
	for i := range changes {
		c := &changes[i]
		e, _ := s.lookup(c.Key)
		if e == nil || c.Delete || int(e.n) != len(c.Value) {
			return 0
		}
		es[i] = e
	}
	for i := range changes {
		es[i].set(changes[i].Value)
	}
	return len(changes)
}

// growth returns by how much applying c could grow the session (0 if it cannot),
// given the entry currently pending for c.Key, if any.
func growth(c *Change, e *entry) int64 {
	n := len(c.Value)
	if c.Delete {
		n = 0
	}
	if e == nil {
		return entryBytes(len(c.Key), n)
	}
	return int64(max(n-e.size(), 0))
}

// apply makes c the pending change of its key, given the entry currently pending for
// it (nil if none) and the key's hash. It returns the change in counted bytes.
func (s *session) apply(c *Change, e *entry, h uint64) (delta int64) {
	if e == nil {
		e = newEntry(c.Key, c.Value, c.Delete)
		s.items.insert(e, h, s.sh.hash)
		return entryBytes(len(c.Key), e.size())
	}
	old := int64(e.size())
	switch {
	case c.Delete && e.c <= 1024:
		e.n = tombstone
		return -old
	case !c.Delete && e.fits(len(c.Value)):
		e.set(c.Value)
		return int64(len(c.Value)) - old
	}
	ne := newEntry(c.Key, c.Value, c.Delete)
	s.items.replace(c.Key, h, ne)
	return int64(ne.size()) - old
}

// flushWait is a Flush call waiting for this session to land snapshot need.
type flushWait struct {
	w    *waiter
	need uint64
}

// releaseWaits signals the waits satisfied by landed (all of them when all is set).
func (s *session) releaseWaits(all bool) {
	if len(s.waits) == 0 {
		return
	}
	kept := s.waits[:0]
	for _, fw := range s.waits {
		if all || fw.need <= s.landed {
			fw.w.done1()
		} else {
			kept = append(kept, fw)
		}
	}
	clear(s.waits[len(kept):])
	s.waits = kept
	if len(kept) == 0 {
		s.waits = nil
	}
}
