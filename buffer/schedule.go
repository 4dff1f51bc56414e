package buffer

import (
	"cmp"
	"container/heap"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Scheduling. Dirty sessions wait in a due list of their shard and family (index 0
// the default family, then Config.Families). Each list is FIFO because every session
// in it is due at its first unflushed change plus the same Delay, its family's, so a
// session joins at the back and only heads are ever due; urgent sessions (over a size
// limit, or asked for by Flush) jump to the front of their own list. Sessions of
// families with different delays never share a list: a 10ms session committed after a
// 5s one would otherwise wait behind it. One scheduler goroutine sleeps on a single
// timer until the earliest head of any list is due (less the family's slack,
// min(Delay/16, 1ms)), then moves due sessions to the ready queue, longest waiting
// first, from which at most Concurrency workers take them. Sessions in backoff after
// a transient error wait in a small heap instead, and rank in the ready queue as due
// at their first unflushed change plus their family's Delay.
//
// The commit path wakes the scheduler only when it makes a session due earlier than
// the scheduler plans to look (b.wake), which in steady state it never does. A pass
// costs one look at the head of each list: shards times families.

// kickNow wakes the scheduler without blocking.
func (b *Buffer) kickNow() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

func (b *Buffer) loop() {
	defer close(b.loopDone)
	for {
		select {
		case <-b.stop:
			if b.timer != nil {
				b.timer.Stop()
			}
			return
		case <-b.kick:
		case <-b.tick:
			b.timerAt = math.MaxInt64 // that timer is spent
		case reply := <-b.syncReq:
			b.pass()
			close(reply)
			continue
		}
		b.pass()
	}
}

// pass moves every due session to the ready queue, starts workers, and sets the timer
// for the next due time.
func (b *Buffer) pass() {
	now := b.now()
	b.wake.Store(math.MaxInt64) // commits during the pass kick, so none is missed
	b.mu.Lock()
	active := !b.paused && !b.stopping
	b.mu.Unlock()

	next := int64(math.MaxInt64) // time of the next pass
	var batch []readyEntry
	if active {
		pressure := b.held.Load() > b.maxPending/2
		for i := range b.shards {
			sh := &b.shards[i]
			sh.mu.Lock()
			for f := range sh.fams {
				due := &sh.fams[f].due
				slack := b.fams[f].slack
				for s := due.head; s != nil; s = due.head {
					if s.due > now+slack && !pressure {
						next = min(next, s.due-slack)
						break
					}
					due.remove(s)
					if s.flying {
						s.where = placeHeld
						continue
					}
					s.where = placeReady
					batch = append(batch, readyEntry{s.due, s})
				}
			}
			sh.mu.Unlock()
		}

		var expired []*session
		b.mu.Lock()
		for len(b.retry) > 0 && b.retry[0].at <= now {
			expired = append(expired, heap.Pop(&b.retry).(retryEntry).s)
		}
		b.mu.Unlock()
		for _, s := range expired {
			sh := s.sh
			sh.mu.Lock()
			if s.where == placeBackoff {
				s.where = placeReady
				batch = append(batch, readyEntry{s.first + b.fams[s.fam].delay, s})
			}
			sh.mu.Unlock()
		}
	}

	// Shards were visited in index order; start the longest waiting first.
	slices.SortStableFunc(batch, func(x, y readyEntry) int { return cmp.Compare(x.due, y.due) })
	b.mu.Lock()
	for _, e := range batch {
		b.ready.push(e.s)
	}
	if active && len(b.retry) > 0 {
		next = min(next, b.retry[0].at)
	}
	b.launchLocked()
	b.mu.Unlock()

	if active {
		b.wake.Store(next)
	} else {
		b.wake.Store(math.MinInt64) // nothing to wake for: Resume kicks
	}
	b.arm(next, now)
}

// arm sets the scheduler's single timer to fire at next.
func (b *Buffer) arm(next, now int64) {
	if next == b.timerAt {
		return
	}
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.timerAt = next
	if next == math.MaxInt64 {
		return
	}
	d := time.Duration(max(next-now, 0))
	b.timer = b.clock.AfterFunc(d, func() {
		select {
		case b.tick <- struct{}{}:
		default:
		}
	})
}

// launchLocked starts workers for ready sessions, up to Concurrency; each takes a
// group of them when GroupFlush is set. b.mu is held.
func (b *Buffer) launchLocked() {
	for !b.paused && !b.stopping && b.running < b.cfg.Concurrency && b.ready.len() > 0 {
		first := b.takeReadyLocked(nil)
		b.running++
		b.workers.Add(1)
		go b.work(first, b.takeCallLocked())
	}
}

// takeReadyLocked appends to dst the next ready session, or up to GroupMax of them
// when GroupFlush is set. b.mu is held and the ready queue is not empty.
//
// A worker takes whatever is ready up to GroupMax even when other worker slots are
// idle: one request carrying several sessions costs the store (and this process)
// less than one request each, so a backlog after a stall drains sooner, and a lone
// ready session still travels alone.
func (b *Buffer) takeReadyLocked(dst []*session) []*session {
	n := 1
	if b.cfg.GroupFlush != nil {
		n = b.cfg.GroupMax
	}
	for i := 0; i < n && b.ready.len() > 0; i++ {
		dst = append(dst, b.ready.pop())
	}
	return dst
}

// work flushes the sessions it was given, then keeps taking ready sessions until
// none is left. call is the index of the slot it shows its writes under way
// in (b.calls), -1 when no family has a window bound.
func (b *Buffer) work(sessions []*session, call int32) {
	defer b.workers.Done()
	var g groupScratch
	if call >= 0 {
		g.call = &b.calls[call]
	}
	for len(sessions) > 0 {
		if len(sessions) == 1 {
			b.flushSession(&g, sessions[0])
		} else {
			b.flushGroup(&g, sessions)
		}
		clear(sessions)
		sessions = sessions[:0]
		b.mu.Lock()
		if !b.paused && !b.stopping && b.ready.len() > 0 {
			sessions = b.takeReadyLocked(sessions)
		} else {
			b.running--
			if call >= 0 {
				b.freeCalls = append(b.freeCalls, call)
			}
		}
		b.mu.Unlock()
	}
}

// backoff returns the wait before retry number attempt (from 1): a random time
// between half and all of min(RetryMin<<(attempt-1), RetryMax).
func (b *Buffer) backoff(attempt int) int64 {
	d := b.cfg.RetryMax
	if n := attempt - 1; n >= 0 && n < 63 && b.cfg.RetryMin <= b.cfg.RetryMax>>n {
		d = b.cfg.RetryMin << n // cannot overflow: at most RetryMax
	}
	if d <= 0 {
		d = b.cfg.RetryMax
	}
	half := int64(d) / 2
	return half + rand.Int64N(int64(d)-half+1)
}

// scheduleRetry queues s (already in placeBackoff) for a retry at time at.
func (b *Buffer) scheduleRetry(s *session, at int64) {
	b.mu.Lock()
	if !b.stopping {
		heap.Push(&b.retry, retryEntry{at: at, s: s})
	}
	b.mu.Unlock()
	if at < b.wake.Load() {
		b.kickNow()
	}
}

// readyQueue is a FIFO of sessions to snapshot. Entries may be stale (the session was
// discarded): workers check the session's place before flushing it.
type readyQueue struct {
	q    []*session
	head int
}

func (r *readyQueue) len() int { return len(r.q) - r.head }

func (r *readyQueue) push(s *session) { r.q = append(r.q, s) }

func (r *readyQueue) pop() *session {
	s := r.q[r.head]
	r.q[r.head] = nil
	r.head++
	if r.head == len(r.q) {
		r.q, r.head = r.q[:0], 0
	} else if r.head > 1024 && r.head*2 > len(r.q) {
		n := copy(r.q, r.q[r.head:])
		clear(r.q[n:])
		r.q, r.head = r.q[:n], 0
	}
	return s
}

type readyEntry struct {
	due int64
	s   *session
}

type retryEntry struct {
	at int64
	s  *session
}

// retryHeap orders sessions in backoff by retry time (container/heap).
type retryHeap []retryEntry

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h retryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *retryHeap) Push(x any)        { *h = append(*h, x.(retryEntry)) }
func (h *retryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = retryEntry{}
	*h = old[:len(old)-1]
	return e
}
