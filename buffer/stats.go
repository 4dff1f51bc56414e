package buffer

import (
	"math"
	"sync/atomic"
	"time"
)

// Stats is a point-in-time view of a Buffer, cheap enough to take on every metrics
// scrape. Pending figures include snapshots in flight or waiting to be retried. They
// cover all families; Families breaks them down.
type Stats struct {
	// PendingSessions is the number of sessions with unflushed state.
	PendingSessions int
	// PendingItems is the number of unflushed items (latest change per key).
	PendingItems int
	// PendingBytes is the unflushed size as counted against MaxPendingBytes.
	PendingBytes int64
	// OldestPendingAge is the age of the oldest unflushed change, of any family: the
	// live data-loss window. Zero when nothing is pending.
	OldestPendingAge time.Duration
	// InFlight is the number of FlushFunc calls running.
	InFlight int
	// Paused reports whether Pause is in effect.
	Paused bool
	// Overloaded reports whether Commit and End refuse with ErrOverloaded now, for
	// the sessions of at least one family (see Config.MaxWindow; Families says
	// which).
	Overloaded bool

	// Cumulative counters.
	Commits      uint64 // successful Commit calls
	Changes      uint64 // changes in them
	Coalesced    uint64 // pending items replaced before being flushed (by a change or an End)
	Ends         uint64 // successful End calls
	Flushes      uint64 // snapshots (or parts) written successfully, grouped or not
	FlushedItems uint64 // items in them
	Retries      uint64 // FlushFunc calls that failed transiently
	Drops        uint64 // snapshots (or parts) dropped after a permanent error
	DroppedItems uint64 // items in them
	Refusals     uint64 // Commit and End calls refused with ErrBufferFull
	Overloads    uint64 // Commit and End calls refused with ErrOverloaded
	// OverloadTrips counts the times the window bound of a family started refusing.
	OverloadTrips uint64
	// LateWrites counts the writes that landed more than their family's MaxWindow
	// after their oldest change (see FlushEvent.Late): the bound is a prediction,
	// and these are the times it was wrong.
	LateWrites uint64
	// SessionTooLarge counts Commit calls refused with ErrSessionTooLarge.
	SessionTooLarge uint64
	Splits          uint64 // snapshots split into several parts
	Discarded       uint64 // items dropped by Discard (those of a write in flight, once it fails)
	Groups          uint64 // GroupFlush calls
	Grouped         uint64 // snapshots in them

	// Families breaks the pending figures and the refusals down by family: index 0
	// is the default family (Name ""), then Config.Families in order.
	Families []FamilyStats
}

// FamilyStats is the part of Stats that concerns one family (see Config.Families).
type FamilyStats struct {
	// Name is the family's Name; "" for the default family.
	Name string
	// PendingSessions and PendingItems count the family's sessions with unflushed
	// state and their unflushed items, in flight included.
	PendingSessions int
	PendingItems    int
	// OldestPendingAge is the age of the family's oldest unflushed change: the
	// family's live data-loss window. Zero when nothing of the family is pending.
	OldestPendingAge time.Duration
	// Overloaded reports whether Commit and End of the family's sessions refuse
	// with ErrOverloaded now (the family's MaxWindow).
	Overloaded bool
	// Overloads counts the family's Commit and End calls refused with
	// ErrOverloaded, OverloadTrips the times its window bound started refusing.
	Overloads     uint64
	OverloadTrips uint64
	// LateWrites counts the family's writes that landed more than its MaxWindow
	// after their oldest change.
	LateWrites uint64
	// SessionTooLarge counts the family's Commit calls refused with
	// ErrSessionTooLarge (Family.MaxSessionBytes).
	SessionTooLarge uint64
}

// counters are the flush side's cumulative counters but for those of its outcomes
// (flushes, drops), which live in shards as the commit side's do.
type counters struct {
	retries, splits, groups, grouped atomic.Uint64
	inFlight                         atomic.Int64
}

// Stats returns the buffer's current figures. It visits every shard briefly and never
// waits for a flush. A flush's outcome is counted (Flushes, Drops) when its items
// leave the pending figures, so every change accepted is in exactly one of
// FlushedItems, DroppedItems, Coalesced, Discarded and PendingItems.
func (b *Buffer) Stats() Stats {
	st := Stats{
		PendingBytes: b.held.Load(),
		InFlight:     int(b.ctr.inFlight.Load()),
		Retries:      b.ctr.retries.Load(),
		Splits:       b.ctr.splits.Load(),
		Groups:       b.ctr.groups.Load(),
		Grouped:      b.ctr.grouped.Load(),
	}
	st.Families = b.collect(&st)
	for _, fs := range st.Families {
		st.PendingItems += fs.PendingItems
		st.OldestPendingAge = max(st.OldestPendingAge, fs.OldestPendingAge)
		st.Overloaded = st.Overloaded || fs.Overloaded
		st.Overloads += fs.Overloads
		st.OverloadTrips += fs.OverloadTrips
		st.LateWrites += fs.LateWrites
		st.SessionTooLarge += fs.SessionTooLarge
	}
	b.mu.Lock()
	st.Paused = b.paused
	b.mu.Unlock()
	return st
}

// collect visits every shard, adds up the commit side's counters kept per shard in
// st and returns the figures of each family.
func (b *Buffer) collect(st *Stats) []FamilyStats {
	fams := make([]FamilyStats, len(b.fams))
	oldest := make([]int64, len(b.fams))
	for f := range oldest {
		oldest[f] = math.MaxInt64
	}
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		st.PendingSessions += len(sh.sessions)
		st.Commits += sh.commits
		st.Changes += sh.changes
		st.Coalesced += sh.coalesced
		st.Ends += sh.ends
		st.Refusals += sh.refusals
		st.Discarded += sh.discarded
		st.Flushes += sh.flushes
		st.FlushedItems += sh.flushedItems
		st.Drops += sh.drops
		st.DroppedItems += sh.droppedItems
		for f := range sh.fams {
			fs, fst := &sh.fams[f], &fams[f]
			fst.PendingSessions += len(fs.oldest) // every session of the family is in its heap
			fst.PendingItems += fs.items
			fst.Overloads += fs.overloads
			fst.SessionTooLarge += fs.tooLarge
			if t, ok := fs.oldest.min(); ok && t < oldest[f] {
				oldest[f] = t
			}
		}
		sh.mu.Unlock()
	}
	now := b.now()
	for f := range fams {
		fst, fam := &fams[f], &b.fams[f]
		fst.Name = fam.name
		if oldest[f] != math.MaxInt64 {
			fst.OldestPendingAge = max(time.Duration(now-oldest[f]), 0)
		}
		fst.Overloaded = fam.window.overloaded.Load()
		fst.OverloadTrips = fam.window.trips.Load()
		fst.LateWrites = fam.window.late.Load()
	}
	return fams
}
