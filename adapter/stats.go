package adapter

import (
	"time"

	"github.com/holdover/holdover/buffer"
)

// Stats is a snapshot of the adapter's counters, cheap enough to take on
// every metrics scrape (the adapter also exports them through OpenTelemetry).
type Stats struct {
	Buffer    BufferStats
	Residency ResidencyStats
}

// BufferStats are the write-behind buffer's figures. Pending figures include
// writes in flight or waiting to be retried.
type BufferStats struct {
	// PendingSessions is the number of sessions with unwritten changes.
	PendingSessions int
	// PendingItems is the number of unwritten items (latest change per key).
	PendingItems int
	// PendingBytes is the unwritten size, as counted against
	// HOLDOVER_MAX_PENDING_BYTES.
	PendingBytes int64
	// OldestPendingAge is the age of the oldest unwritten change: the live
	// data-loss window. Zero when nothing is pending.
	OldestPendingAge time.Duration
	// InFlight is the number of writes running.
	InFlight int
	// Paused reports whether writing is paused (the node is fenced).
	Paused bool
	// Overloaded reports whether Commit and End refuse with ErrOverloaded
	// now (HOLDOVER_MAX_WINDOW).
	Overloaded bool

	// Cumulative counters.
	Commits      uint64 // successful Commit calls
	Changes      uint64 // changes in them
	Coalesced    uint64 // pending items replaced before being written (by a change or an End)
	Ends         uint64 // successful End calls
	Flushes      uint64 // session writes (or parts) that succeeded, grouped or not
	FlushedItems uint64 // items in them
	Retries      uint64 // writes that failed transiently (and were retried)
	Drops        uint64 // writes dropped after a permanent error (see Hooks.OnDropped)
	DroppedItems uint64 // items in them
	Refusals     uint64 // Commit and End calls refused with ErrBufferFull
	// Overloads counts the Commit and End calls the buffer refused with
	// ErrOverloaded (HOLDOVER_MAX_WINDOW). A commit to a new session refused
	// with it because ownership creations are backed up is counted in
	// ResidencyStats.CreationRefusals instead.
	Overloads uint64
	// OverloadTrips counts the times the window bound started refusing.
	OverloadTrips uint64
	// LateWrites counts the writes that landed more than
	// HOLDOVER_MAX_WINDOW (a family's own bound for its sessions) after
	// their oldest change: the refusals keep the window by predicting it
	// from the recent past, and these are the times the prediction was
	// wrong (a store that slowed down suddenly). Had the node died just
	// before such a write landed, changes it had acknowledged would have
	// been lost beyond the bound. The node logs them, at most one line
	// every 10 seconds.
	LateWrites uint64
	// SessionTooLarge counts Commit calls refused with ErrSessionTooLarge.
	SessionTooLarge uint64
	Splits          uint64 // sessions split into parts over HOLDOVER_MAX_BATCH_BYTES
	Discarded       uint64 // items discarded because a peer adopted their session during a fence
	Groups          uint64 // grouped writes of several small sessions
	Grouped         uint64 // session writes in them

	// Families breaks the figures down by family (HOLDOVER_FAMILIES): the
	// sessions of no family first (Name ""), then the owned families in
	// configuration order, then the shared ones. The fields above count the
	// node's owned sessions, those of every owned family included.
	Families []FamilyStats
}

// FamilyStats are one family's buffer figures.
type FamilyStats struct {
	// Name is the family's name; "" for the sessions of no family.
	Name string
	// PendingSessions and PendingItems count the family's sessions with
	// unwritten changes and their unwritten items, writes in flight included.
	PendingSessions int
	PendingItems    int
	// OldestPendingAge is the age of the family's oldest unwritten change:
	// its live data-loss window. Zero when nothing of it is pending.
	OldestPendingAge time.Duration
	// Overloaded reports whether Commit and End refuse the family's sessions
	// with ErrOverloaded now (its window bound; see docs/families.md).
	Overloaded bool
	// Overloads counts the family's Commit and End calls refused with
	// ErrOverloaded, OverloadTrips the times its window bound started
	// refusing.
	Overloads     uint64
	OverloadTrips uint64
	// LateWrites counts the family's writes that landed more than its
	// window bound after their oldest change (see BufferStats.LateWrites).
	LateWrites uint64
	// SessionTooLarge counts the family's Commit calls refused with
	// ErrSessionTooLarge.
	SessionTooLarge uint64
}

// ResidencyStats are the ownership figures: leases, adoptions, fences.
type ResidencyStats struct {
	Owned          int    // sessions owned now
	Created        uint64 // brand-new sessions recorded at epoch 1
	Adopted        uint64 // adoptions won
	NotFound       uint64 // adoptions of unknown sessions (cached or not)
	NegativeHits   uint64 // of those, answered by the negative cache
	OwnedElsewhere uint64 // adoptions refused because a live peer owns the session
	ClaimConflicts uint64 // claims lost to a concurrent claimant
	AdoptErrors    uint64 // adoptions that failed with a Cassandra error
	OwnerReads     uint64 // ownership rows read from Cassandra by Adopt and Peek
	LeaseReads     uint64 // peers' leases read
	// LeaseVouched counts adoptions that needed no lease read: the owner's
	// lease had been seen expired after it claimed the session.
	LeaseVouched uint64
	// LeaseWaits counts the times an adoption waiting for a live owner's
	// lease to run out (AdoptOptions.Wait) looked again.
	LeaseWaits uint64
	// VoidRecords counts new sessions recorded over another node's void
	// record (a late record of a fenced node, or one of a node that died
	// before its first write).
	VoidRecords   uint64
	Released      uint64 // sessions released on shutdown
	Renewals      uint64 // lease renewals that succeeded
	RenewFailures uint64 // lease renewals that failed
	Fences        uint64 // times this node self-fenced
	Refreshes     uint64 // owned sessions whose TTLs were renewed
	Lost          uint64 // owned sessions found owned by another node on refresh
	// CreationRefusals counts changes to sessions not owned yet refused
	// while ownership creations were backed up
	// (HOLDOVER_MAX_CONCURRENT_CREATES).
	CreationRefusals uint64
	// CreationProbes counts the serial reads that measured Cassandra while
	// new sessions were refused with no creation left to measure it by.
	CreationProbes uint64
	// CreationWindow is the queue of ownership creations a new session is
	// admitted behind now without more ado: it starts at a quarter of
	// HOLDOVER_MAX_CONCURRENT_CREATES (or what the budget holds one creation
	// at a time at the lease's latency, if more) and grows as creations end in time (a
	// slow start; beyond it a session is admitted only where the queue would
	// fit its budget one creation at a time).
	CreationWindow int64
	Fenced         bool // whether the node is fenced now
}

// Stats returns the adapter's counters. Buffer.OldestPendingAge is the live
// data-loss window.
func (a *Adapter) Stats() Stats {
	// The conversion compiles only while the types match residency's field
	// for field.
	return Stats{Buffer: a.bufferStats(), Residency: ResidencyStats(a.res.Stats())}
}

// bufferStats is the node buffer's figures, with the shared families'
// appended to Families.
func (a *Adapter) bufferStats() BufferStats {
	out := bufferStatsOf(a.buf.Stats())
	if a.sharedBuf != nil {
		for _, f := range a.sharedBuf.Stats().Families[1:] {
			out.Families = append(out.Families, FamilyStats(f))
		}
	}
	return out
}

// bufferStatsOf converts the buffer's figures. TestBufferStatsCopyEveryField
// checks that it copies every field.
func bufferStatsOf(b buffer.Stats) BufferStats {
	out := BufferStats{
		PendingSessions: b.PendingSessions, PendingItems: b.PendingItems, PendingBytes: b.PendingBytes,
		OldestPendingAge: b.OldestPendingAge, InFlight: b.InFlight, Paused: b.Paused, Overloaded: b.Overloaded,
		Commits: b.Commits, Changes: b.Changes, Coalesced: b.Coalesced, Ends: b.Ends, Flushes: b.Flushes,
		FlushedItems: b.FlushedItems, Retries: b.Retries, Drops: b.Drops, DroppedItems: b.DroppedItems,
		Refusals: b.Refusals, Overloads: b.Overloads, OverloadTrips: b.OverloadTrips, LateWrites: b.LateWrites, SessionTooLarge: b.SessionTooLarge,
		Splits: b.Splits, Discarded: b.Discarded, Groups: b.Groups, Grouped: b.Grouped,
		Families: make([]FamilyStats, 0, len(b.Families)),
	}
	for _, f := range b.Families {
		// The conversion compiles only while the types match field for field.
		out.Families = append(out.Families, FamilyStats(f))
	}
	return out
}
