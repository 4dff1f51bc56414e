package buffer

import (
	"sync/atomic"
	"time"
)

// Stats is a point-in-time view of a Buffer, cheap enough to take on every metrics
// scrape. Pending figures include snapshots in flight or waiting to be retried.
type Stats struct {
	// PendingSessions is the number of sessions with unflushed state.
	PendingSessions int
	// PendingItems is the number of unflushed items (latest change per key).
	PendingItems int
	// PendingBytes is the unflushed size as counted against MaxPendingBytes.
	PendingBytes int64
	// OldestPendingAge is the age of the oldest unflushed change: the live data-loss
	// window. Zero when nothing is pending.
	OldestPendingAge time.Duration
	// InFlight is the number of FlushFunc calls running.
	InFlight int
	// Paused reports whether Pause is in effect.
	Paused bool
	// Overloaded reports whether Commit and End refuse with ErrOverloaded now
	// (see Config.MaxWindow).
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
	// OverloadTrips counts the times the window bound started refusing.
	OverloadTrips uint64
	Splits        uint64 // snapshots split into several parts
	Discarded     uint64 // items dropped by Discard
	Groups        uint64 // GroupFlush calls
	Grouped       uint64 // snapshots in them
}

// counters are the flush side's cumulative counters; the commit side's live in shards.
type counters struct {
	flushes, flushedItems, retries, drops, droppedItems, splits, groups, grouped atomic.Uint64
	inFlight                                                                     atomic.Int64
}

// Stats returns the buffer's current figures. It visits every shard briefly and never
// waits for a flush.
func (b *Buffer) Stats() Stats {
	st := Stats{
		PendingBytes: b.held.Load(),
		InFlight:     int(b.ctr.inFlight.Load()),
		Flushes:      b.ctr.flushes.Load(),
		FlushedItems: b.ctr.flushedItems.Load(),
		Retries:      b.ctr.retries.Load(),
		Drops:        b.ctr.drops.Load(),
		DroppedItems: b.ctr.droppedItems.Load(),
		Splits:       b.ctr.splits.Load(),
		Groups:       b.ctr.groups.Load(),
		Grouped:      b.ctr.grouped.Load(),
	}
	oldest, found := int64(0), false
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		st.PendingSessions += len(sh.sessions)
		st.PendingItems += sh.items
		st.Commits += sh.commits
		st.Changes += sh.changes
		st.Coalesced += sh.coalesced
		st.Ends += sh.ends
		st.Refusals += sh.refusals
		st.Overloads += sh.overloads
		st.Discarded += sh.discarded
		if t, ok := sh.oldest.min(); ok && (!found || t < oldest) {
			oldest, found = t, true
		}
		sh.mu.Unlock()
	}
	if found {
		st.OldestPendingAge = max(time.Duration(b.now()-oldest), 0)
	}
	st.Overloaded = b.window.overloaded.Load()
	st.OverloadTrips = b.window.trips.Load()
	b.mu.Lock()
	st.Paused = b.paused
	b.mu.Unlock()
	return st
}
