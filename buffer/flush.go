package buffer

import (
	"slices"
	"strings"
	"sync"
)

// flight is one snapshot of a session on its way to the FlushFunc.
type flight struct {
	s      *session
	gen    uint64
	table  itemTable // the session's items when the snapshot was taken
	bytes  int64     // their counted size
	ended  bool
	first  int64
	items  []Item
	parts  []int // end index in items of each part
	failed int   // index in items of the first item not written (transient error), or -1
	err    error // the transient error
	drops  []drop
}

type drop struct {
	err   error
	items int
}

var itemPool = sync.Pool{New: func() any { return new([]Item) }}

// flushSession snapshots a ready session, writes the snapshot part by part, and lands
// the result. Only one flushSession runs per session at a time: the session is taken
// only from placeReady, and never while flying.
func (b *Buffer) flushSession(s *session) {
	sh := s.sh
	sh.mu.Lock()
	if s.where != placeReady || s.flying {
		sh.mu.Unlock() // discarded since it was queued
		return
	}
	s.where = placeNone
	s.flying = true
	s.gen++
	f := flight{s: s, gen: s.gen, table: s.items, bytes: s.bytes, ended: s.ended, first: s.first, failed: -1}
	s.items = itemTable{}
	s.bytes = 0
	s.ended = false
	s.flyFirst = s.first
	attempt := int(s.attempt) + 1
	sh.mu.Unlock()

	// f.table is ours until landing: commits go to a new s.items now.
	buf := itemPool.Get().(*[]Item)
	items := (*buf)[:0]
	for _, e := range f.table.slots {
		if e != nil {
			items = append(items, Item{Key: e.key(), Value: e.value(), Delete: e.deleted()})
		}
	}
	slices.SortFunc(items, func(x, y Item) int { return strings.Compare(x.Key, y.Key) })
	f.items = items
	f.parts = b.split(items)
	if len(f.parts) > 1 {
		b.ctr.splits.Add(1)
	}

	seq, seqErr := b.seq.next(b.clock.Now())
	start := 0
	for i, end := range f.parts {
		part := items[start:end]
		if seqErr != nil {
			f.drops = append(f.drops, drop{seqErr, len(part)})
			b.ctr.drops.Add(1)
			b.ctr.droppedItems.Add(uint64(len(part)))
			start = end
			continue
		}
		snap := Snapshot{
			Session: s.id,
			Ended:   f.ended && i == 0,
			Items:   part,
			Seq:     seq,
			Part:    i + 1,
			Parts:   len(f.parts),
			Oldest:  b.timeAt(f.first),
		}
		t0 := b.clock.Now()
		b.ctr.inFlight.Add(1)
		err := b.flush(b.flightCtx, &snap)
		b.ctr.inFlight.Add(-1)
		if b.cfg.OnFlush != nil {
			t1 := b.clock.Now()
			b.cfg.OnFlush(FlushEvent{
				Session: s.id, Seq: seq, Part: i + 1, Parts: len(f.parts),
				Items: len(part), Bytes: itemsBytes(part), Ended: snap.Ended,
				Attempt: attempt, Duration: t1.Sub(t0), Lag: t1.Sub(snap.Oldest), Err: err,
			})
		}
		switch {
		case err == nil:
			b.ctr.flushes.Add(1)
			b.ctr.flushedItems.Add(uint64(len(part)))
		case IsPermanent(err):
			f.drops = append(f.drops, drop{err, len(part)})
			b.ctr.drops.Add(1)
			b.ctr.droppedItems.Add(uint64(len(part)))
		default:
			f.failed, f.err = start, err
			f.ended = f.ended && i == 0 // a written part 1 carried the End
			b.ctr.retries.Add(1)
		}
		if f.failed >= 0 {
			break
		}
		start = end
	}

	b.land(&f)
	clear(items)
	*buf = items[:0]
	itemPool.Put(buf)
	if b.cfg.OnDrop != nil {
		for _, d := range f.drops {
			b.cfg.OnDrop(s.id, d.err, d.items)
		}
	}
}

// split cuts sorted items into parts of at most MaxBatchBytes; it returns the end
// index of each part. An Ended snapshot without items is one empty part.
func (b *Buffer) split(items []Item) []int {
	var parts []int
	var size int64
	for i, it := range items {
		n := entryBytes(len(it.Key), len(it.Value))
		if size > 0 && size+n > b.cfg.MaxBatchBytes {
			parts = append(parts, i)
			size = 0
		}
		size += n
	}
	return append(parts, len(items))
}

func itemsBytes(items []Item) int64 {
	var n int64
	for _, it := range items {
		n += entryBytes(len(it.Key), len(it.Value))
	}
	return n
}

// land ends a flight: on success (including permanent drops) the session's waits are
// released; on a transient error the unwritten items go back under any newer changes
// and the session waits for its retry.
func (b *Buffer) land(f *flight) {
	s := f.s
	sh := s.sh
	sh.mu.Lock()
	s.flying = false
	flown := f.table.n
	release := f.bytes
	kept := 0
	transient := f.failed >= 0 && !s.dropFly
	if transient {
		if f.failed == 0 && s.items.n == 0 && !s.ended {
			// Nothing was written and nothing came since: the table goes back whole.
			s.items, f.table = f.table, itemTable{}
			kept = s.items.n
			s.bytes, release = f.bytes, 0
		} else if !s.ended { // an End since the snapshot supersedes all of it
			for _, it := range f.items[f.failed:] {
				e, h := s.lookup(it.Key)
				if e != nil {
					continue // a newer change of the key
				}
				e = f.table.get(it.Key, h)
				s.items.insert(e, h, sh.hash)
				n := entryBytes(len(it.Key), e.size())
				s.bytes += n
				release -= n
				kept++
			}
		}
		if f.ended {
			s.ended = true
		}
		s.attempt++
		s.lastErr = f.err
	} else {
		s.attempt = 0
		s.lastErr = nil
		s.landed = f.gen
		s.releaseWaits(false)
	}
	s.dropFly = false
	sh.items -= flown - kept
	b.held.Add(-release)
	if s.items.slots == nil && len(f.table.slots) <= 1024 {
		f.table.reset() // reuse its arrays
		s.items = f.table
	}

	var retryAt int64
	queue := false
	switch {
	case !s.dirty():
		b.forget(sh, s)
	case transient:
		if s.where == placeDue {
			sh.due.remove(s)
		}
		s.first = f.first // the failed changes (or what superseded them) are unflushed since
		sh.oldest.fix(int(s.heapIdx))
		s.where = placeBackoff
		retryAt = b.now() + b.backoff(int(s.attempt))
	default:
		sh.oldest.fix(int(s.heapIdx)) // oldest moves from the flight to the pending state
		if s.where == placeHeld {
			s.where = placeReady
			queue = true
		}
	}
	sh.mu.Unlock()

	switch {
	case retryAt != 0:
		b.scheduleRetry(s, retryAt)
	case queue:
		b.mu.Lock()
		b.ready.push(s)
		b.mu.Unlock()
	}
}
