package buffer

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
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

	attempt int       // calls made for this unflushed state, this one included
	taken   time.Time // when the snapshot was taken
	seq     uint64    // the snapshot's sequence
	seqErr  error     // the sequence clock could not give one: the snapshot is dropped
	buf     *[]Item   // items' pooled backing array

	// dropRest, when set, drops the parts not yet written, unwritten: the sequence
	// clock gave none (seqErr), or an earlier part failed permanently.
	dropRest error

	// relItems and relBytes: what the parts written before the last took out of
	// the pending figures already (released); land releases the rest.
	relItems int
	relBytes int64

	// flushes and flushedItems: the parts written, and their items, not yet
	// counted in the shard's figures; they are counted as they leave the
	// pending ones (released, land), as are drops.
	flushes, flushedItems uint64
}

type drop struct {
	err   error
	items int
}

var itemPool = sync.Pool{New: func() any { return new([]Item) }}

// flushSession snapshots a ready session, writes the snapshot part by part, and lands
// the result. Only one flight runs per session at a time: the session is taken only
// from placeReady, and never while flying.
func (b *Buffer) flushSession(g *groupScratch, s *session) {
	if f := b.take(s); f != nil {
		b.fly(g.call, f)
		b.finish(f)
	}
}

// take snapshots a ready session into a flight, or returns nil when the session was
// discarded since it was queued.
func (b *Buffer) take(s *session) *flight {
	sh := s.sh
	sh.mu.Lock()
	if s.where != placeReady || s.flying {
		sh.mu.Unlock() // discarded since it was queued
		return nil
	}
	s.where = placeNone
	s.flying = true
	s.gen++
	f := &flight{s: s, gen: s.gen, table: s.items, bytes: s.bytes, ended: s.ended, first: s.first, failed: -1}
	s.items = itemTable{}
	s.bytes = 0
	s.ended = false
	s.flyFirst = s.first
	s.flyBytes = f.bytes
	f.attempt = int(s.attempt) + 1
	f.taken = b.clock.Now() // under the lock: every commit is before or after it
	sh.mu.Unlock()

	// f.table is ours until landing: commits go to a new s.items now.
	f.buf = itemPool.Get().(*[]Item)
	items := (*f.buf)[:0]
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
	f.seq, f.seqErr = b.seq.next(b.clock.Now())
	f.dropRest = f.seqErr
	return f
}

// snapshot is part i (from 0) of f, which spans f.items[start:end].
func (b *Buffer) snapshot(f *flight, i, start, end int) Snapshot {
	return Snapshot{
		Session: f.s.id,
		Ended:   f.ended && i == 0,
		Items:   f.items[start:end],
		Seq:     f.seq,
		Part:    i + 1,
		Parts:   len(f.parts),
		Oldest:  b.timeAt(f.first),
	}
}

// fly writes f part by part through the FlushFunc, stopping at the first transient
// error. After a permanent error the later parts are dropped unwritten: written
// without the failed part they would persist a state the session never had.
// call (nil when no family has a window bound) shows the write under way to
// the watchdog: the whole flight, every part, for a change committed during it
// waits for all of them (shown and timed per part, a split write let the window
// bound accept changes it would refuse; found by review). A part written before
// the last leaves the pending figures at once (released).
func (b *Buffer) fly(call *callSlot, f *flight) {
	start := 0
	began := b.clock.Now()
	var prep time.Duration // the parts' preparations, left out of the flight
	shown, tried := false, false
	for i, end := range f.parts {
		if f.dropRest != nil {
			b.dropPart(f, f.dropRest, end-start)
			start = end
			continue
		}
		snap := b.snapshot(f, i, start, end)
		t0 := b.clock.Now()
		b.ctr.inFlight.Add(1)
		if !shown {
			shown = b.flying(call, f, began.Add(prep))
		}
		err := b.flush(b.flightCtx, &snap)
		b.ctr.inFlight.Add(-1)
		prep += snap.Prep
		tried = true
		b.wrote(f, &snap, start, t0, err)
		if f.failed >= 0 {
			break
		}
		if err == nil && end < len(f.items) {
			b.released(f, snap.Items)
		}
		start = end
	}
	if shown {
		call.landed()
	}
	if tried {
		b.flew(f.s.fam, began, prep)
	}
}

// released takes items, a part of f written before its last, out of the
// pending figures (the family's items, the bytes held, the session's flying
// bytes): it is flushed. land releases the rest.
func (b *Buffer) released(f *flight, items []Item) {
	var n int64
	for i := range items {
		n += entryBytes(len(items[i].Key), len(items[i].Value))
	}
	sh := f.s.sh
	sh.mu.Lock()
	sh.famOf(f.s).items -= len(items)
	f.s.flyBytes -= n
	sh.countFlushes(f)
	sh.mu.Unlock()
	b.held.Add(-n)
	f.relItems += len(items)
	f.relBytes += n
}

// wrote records the outcome of one FlushFunc (or GroupFlush) write of snap, part of f
// starting at items index start, begun at t0.
func (b *Buffer) wrote(f *flight, snap *Snapshot, start int, t0 time.Time, err error) {
	t1 := b.clock.Now()
	w := &b.fams[f.s.fam].window
	late := err == nil && w.max != 0 && int64(t1.Sub(snap.Oldest)) > w.max
	if late {
		w.late.Add(1)
	}
	if b.cfg.OnFlush != nil {
		b.cfg.OnFlush(FlushEvent{
			Session: snap.Session, Family: b.fams[f.s.fam].name, Seq: snap.Seq, Part: snap.Part, Parts: snap.Parts,
			Items: len(snap.Items), Bytes: itemsBytes(snap.Items), Ended: snap.Ended,
			Attempt: f.attempt, Taken: f.taken, Duration: t1.Sub(t0), Lag: t1.Sub(snap.Oldest), Late: late, Err: err,
		})
	}
	switch {
	case err == nil:
		f.flushes++
		f.flushedItems += uint64(len(snap.Items))
	case IsPermanent(err):
		b.dropPart(f, err, len(snap.Items))
		if snap.Part < snap.Parts {
			f.dropRest = fmt.Errorf("%w: part %d of %d: %w", ErrEarlierPartFailed, snap.Part, snap.Parts, err)
		}
	default:
		f.failed, f.err = start, err
		f.ended = f.ended && snap.Part == 1 // a written part 1 carried the End
		b.ctr.retries.Add(1)
	}
}

// flew records for the window bound of family fam how long a call begun at t0
// took, less the preparation it reported (Snapshot.Prep).
func (b *Buffer) flew(fam uint8, t0 time.Time, prep time.Duration) {
	if w := &b.fams[fam].window; w.max != 0 {
		w.flew(b.clock.Now().Sub(t0) - prep)
	}
}

func (b *Buffer) dropPart(f *flight, err error, items int) {
	f.drops = append(f.drops, drop{err, items})
}

// countFlushes adds the parts of f written since the last count to the shard's
// figures. sh.mu is held.
func (sh *shard) countFlushes(f *flight) {
	sh.flushes += f.flushes
	sh.flushedItems += f.flushedItems
	f.flushes, f.flushedItems = 0, 0
}

// finish lands f, returns its item slice to the pool and reports its drops.
func (b *Buffer) finish(f *flight) {
	b.land(f)
	clear(f.items)
	*f.buf = f.items[:0]
	itemPool.Put(f.buf)
	if b.cfg.OnDrop != nil {
		for _, d := range f.drops {
			b.cfg.OnDrop(f.s.id, d.err, d.items)
		}
	}
}

// groupable reports whether f may share a GroupFlush call: one part, small, and a
// sequence to write it at.
func (b *Buffer) groupable(f *flight) bool {
	return f.seqErr == nil && len(f.parts) == 1 && f.bytes <= b.cfg.GroupBytes
}

// flushGroup snapshots the ready sessions a worker took at once. Those that qualify
// are written together through GroupFlush, in calls of at most GroupBytes; the others
// (and a group of one) go through the FlushFunc one by one. The sessions that are not
// prepared (Config.Prepared) are snapshotted and written after the others, in groups
// of their own.
func (b *Buffer) flushGroup(g *groupScratch, sessions []*session) {
	if b.cfg.Prepared != nil {
		g.ready, g.later = g.ready[:0], g.later[:0]
		for _, s := range sessions {
			if b.cfg.Prepared(s.id) {
				g.ready = append(g.ready, s)
			} else {
				g.later = append(g.later, s)
			}
		}
		if len(g.ready) > 0 && len(g.later) > 0 {
			b.groupAndFly(g, g.ready)
			b.groupAndFly(g, g.later)
		} else {
			b.groupAndFly(g, sessions)
		}
		clear(g.ready)
		clear(g.later)
		return
	}
	b.groupAndFly(g, sessions)
}

// groupAndFly snapshots sessions and writes them: those that qualify in groups, then
// the others one by one. The groups go first: a snapshot is in flight from the moment
// it is taken, so a group taken before a large session's write would stay in flight
// (and hold the changes committed to its sessions meanwhile) for as long as that
// write took.
func (b *Buffer) groupAndFly(g *groupScratch, sessions []*session) {
	g.flights, g.alone = g.flights[:0], g.alone[:0]
	var size int64
	for _, s := range sessions {
		f := b.take(s)
		switch {
		case f == nil:
		case !b.groupable(f):
			g.alone = append(g.alone, f)
		default:
			if len(g.flights) > 0 && size+f.bytes > b.cfg.GroupBytes {
				b.flyGroup(g)
				size = 0
			}
			g.flights = append(g.flights, f)
			size += f.bytes
		}
	}
	b.flyGroup(g)
	for _, f := range g.alone {
		b.fly(g.call, f)
		b.finish(f)
	}
	clear(g.alone)
}

// flyGroup writes the flights collected in g with one GroupFlush call (or the
// FlushFunc when there is only one) and lands them.
func (b *Buffer) flyGroup(g *groupScratch) {
	defer func() { g.flights = g.flights[:0] }()
	switch len(g.flights) {
	case 0:
		return
	case 1:
		b.fly(g.call, g.flights[0])
		b.finish(g.flights[0])
		return
	}
	n := len(g.flights)
	g.snaps = g.snaps[:0]
	g.ptrs = g.ptrs[:0]
	for _, f := range g.flights {
		g.snaps = append(g.snaps, b.snapshot(f, 0, 0, len(f.items)))
	}
	for i := range g.snaps {
		g.ptrs = append(g.ptrs, &g.snaps[i])
	}
	g.errs = slices.Grow(g.errs[:0], n)[:n] // nil: cleared after each use
	t0 := b.clock.Now()
	b.ctr.inFlight.Add(int64(n))
	shown := false
	for _, f := range g.flights {
		shown = b.flying(g.call, f, t0) || shown
	}
	b.cfg.GroupFlush(b.flightCtx, g.ptrs, g.errs)
	if shown {
		g.call.landed()
	}
	b.ctr.inFlight.Add(-int64(n))
	var prep time.Duration
	for i := range g.snaps {
		prep = max(prep, g.snaps[i].Prep)
	}
	for _, f := range g.flights { // a group may carry several families: each saw the call
		b.flew(f.s.fam, t0, prep)
	}
	b.ctr.groups.Add(1)
	b.ctr.grouped.Add(uint64(n))
	for i, f := range g.flights {
		b.wrote(f, &g.snaps[i], 0, t0, g.errs[i])
		b.finish(f)
	}
	clear(g.snaps)
	clear(g.ptrs)
	clear(g.errs)
}

// groupScratch is a worker's reusable memory for group flushes, and the slot
// it shows its writes under way in (nil when no family has a window bound).
type groupScratch struct {
	call         *callSlot
	ready, later []*session // flushGroup's split of the sessions (Config.Prepared)
	flights      []*flight
	alone        []*flight // taken, not groupable: written after the groups
	snaps        []Snapshot
	ptrs         []*Snapshot
	errs         []error
}

// MaxPartItems bounds the items of one part of a snapshot: a Cassandra batch
// holds at most 65,535 statements, and a part's batch may carry an End's
// partition delete beside its items.
const MaxPartItems = 65_534

// split cuts sorted items into parts of at most MaxBatchBytes and MaxPartItems
// items; it returns the end index of each part. An Ended snapshot without
// items is one empty part.
func (b *Buffer) split(items []Item) []int {
	var parts []int
	var size int64
	start := 0
	for i, it := range items {
		n := entryBytes(len(it.Key), len(it.Value))
		if size > 0 && (size+n > b.cfg.MaxBatchBytes || i-start == MaxPartItems) {
			parts = append(parts, i)
			size, start = 0, i
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
	s.flyBytes = 0
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
		} else if s.ended { // an End since the snapshot supersedes all of it
			sh.coalesced += uint64(len(f.items) - f.failed)
		} else {
			for _, it := range f.items[f.failed:] {
				e, h := s.lookup(it.Key)
				if e != nil {
					sh.coalesced++ // a newer change of the key
					continue
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
	if f.failed >= 0 && s.dropFly {
		sh.discarded += uint64(len(f.items) - f.failed) // discarded while in flight: not put back
	}
	s.dropFly = false
	sh.countFlushes(f)
	for _, d := range f.drops {
		sh.drops++
		sh.droppedItems += uint64(d.items)
	}
	fs := sh.famOf(s)
	fs.items -= flown - kept - f.relItems // the parts written before the last were released
	b.held.Add(-(release - f.relBytes))
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
			fs.due.remove(s)
		}
		s.first = f.first // the failed changes (or what superseded them) are unflushed since
		fs.oldest.fix(int(s.heapIdx))
		s.where = placeBackoff
		retryAt = b.now() + b.backoff(int(s.attempt))
	default:
		fs.oldest.fix(int(s.heapIdx)) // oldest moves from the flight to the pending state
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
