package adapter

import "time"

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
	Overloads    uint64 // Commit and End calls refused with ErrOverloaded
	// OverloadTrips counts the times the window bound started refusing.
	OverloadTrips uint64
	Splits        uint64 // sessions split into parts over HOLDOVER_MAX_BATCH_BYTES
	Discarded     uint64 // items discarded because a peer adopted their session during a fence
	Groups        uint64 // grouped writes of several small sessions
	Grouped       uint64 // session writes in them
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
	Fenced           bool // whether the node is fenced now
}

// Stats returns the adapter's counters. Buffer.OldestPendingAge is the live
// data-loss window.
func (a *Adapter) Stats() Stats {
	// The conversions compile only while these types match the building
	// blocks' field for field.
	return Stats{Buffer: BufferStats(a.buf.Stats()), Residency: ResidencyStats(a.res.Stats())}
}
