package buffer

import (
	"math"
	"sync"
)

// shardCount is the number of independently locked partitions of the session table.
// Commits to sessions in different shards never contend; 64 keeps contention low up to
// dozens of cores while a scheduler pass (which visits every shard) stays cheap.
const (
	shardCount = 1 << shardBits
	shardBits  = 6
)

// A shard owns the sessions whose ID hashes to it. Everything in it, including the
// scheduling fields of its sessions, is guarded by mu.
type shard struct {
	mu       sync.Mutex
	closed   bool
	seed     uint64 // for item keys
	sessions map[string]*session
	last     *session   // the session of the previous commit: consecutive commits often share one
	fams     []famShard // per family, indexed like Buffer.fams

	commits, changes, coalesced, ends, refusals, discarded uint64
	// The flush side's outcomes, counted when they leave the pending figures,
	// under the same lock, so that Stats sees every item in one or the other.
	flushes, flushedItems, drops, droppedItems uint64

	_ [64]byte // keep the next shard's mutex off this cache line
}

// famShard is a shard's part of one family: its sessions' schedule and counts.
// Keeping a due list per family keeps each list FIFO (its sessions all wait the
// family's Delay), and an oldest heap per family gives the watchdog each
// family's window on its own.
type famShard struct {
	due    dueList
	oldest oldestHeap // every session of the family in the shard's table

	items               int // pending and in-flight items
	overloads, tooLarge uint64
}

// famOf returns the shard's part of s's family.
func (sh *shard) famOf(s *session) *famShard { return &sh.fams[s.fam] }

// hash hashes an item key.
func (sh *shard) hash(key string) uint64 { return strhash(key, sh.seed) }

// lookup finds a session by ID.
func (sh *shard) lookup(id string) *session {
	if s := sh.last; s != nil && s.id == id {
		return s
	}
	s := sh.sessions[id]
	if s != nil {
		sh.last = s
	}
	return s
}

// forget removes a session that has no unflushed state left.
func (sh *shard) forget(s *session) {
	if sh.sessions[s.id] == s {
		delete(sh.sessions, s.id)
	}
	if sh.last == s {
		sh.last = nil
	}
	sh.famOf(s).oldest.remove(s)
	s.where = placeGone
}

// minDue is the due time of an urgent session.
const minDue = math.MinInt64

// dueList holds the dirty sessions of one family waiting for their flush time,
// ordered by due time: sessions join at the back (their due time is now plus the
// family's Delay, never earlier than anyone else's in the list) or, when urgent, at
// the front with due = minDue.
type dueList struct{ head, tail *session }

func (l *dueList) pushBack(s *session, due int64) {
	s.due = due
	s.prev, s.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = s
	} else {
		l.head = s
	}
	l.tail = s
}

func (l *dueList) pushFront(s *session) {
	s.due = minDue
	s.prev, s.next = nil, l.head
	if l.head != nil {
		l.head.prev = s
	} else {
		l.tail = s
	}
	l.head = s
}

// hurry makes s, a dirty session waiting for its due time, urgent: the
// next pass writes it. It reports whether s was waiting; sh.mu is held.
func (sh *shard) hurry(s *session) bool {
	if s.where != placeDue || s.due == minDue {
		return false
	}
	due := &sh.famOf(s).due
	due.remove(s)
	due.pushFront(s)
	return true
}

func (l *dueList) remove(s *session) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		l.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		l.tail = s.prev
	}
	s.prev, s.next = nil, nil
}

// oldestHeap orders a family's sessions in a shard by their oldest unflushed change,
// for the window bound and Stats' ages. Sessions enter it with the current time, so a
// push rarely moves anything.
type oldestHeap []*session

func (h *oldestHeap) push(s *session) {
	s.heapIdx = int32(len(*h))
	*h = append(*h, s)
	h.up(int(s.heapIdx))
}

func (h *oldestHeap) remove(s *session) {
	i := int(s.heapIdx)
	if i < 0 {
		return
	}
	last := len(*h) - 1
	if i != last {
		h.swap(i, last)
	}
	(*h)[last] = nil
	*h = (*h)[:last]
	s.heapIdx = -1
	if i != last {
		h.fix(i)
	}
}

// fix restores the order after the key of the session at i changed.
func (h *oldestHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h oldestHeap) min() (int64, bool) {
	if len(h) == 0 {
		return 0, false
	}
	return h[0].oldestKey(), true
}

func (h oldestHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = int32(i)
	h[j].heapIdx = int32(j)
}

func (h oldestHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p].oldestKey() <= h[i].oldestKey() {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h oldestHeap) down(i int) bool {
	start := i
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h[r].oldestKey() < h[l].oldestKey() {
			m = r
		}
		if h[i].oldestKey() <= h[m].oldestKey() {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > start
}
