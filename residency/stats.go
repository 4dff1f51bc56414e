package residency

import "sync/atomic"

// Stats are cumulative counters of a Manager, for the adapter's metrics.
type Stats struct {
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
	// while ownership creations were backed up (AdmitNew).
	CreationRefusals uint64
	// CreationProbes counts the serial reads AdmitNew's probe made to
	// measure the store while it refused new sessions with none queued.
	CreationProbes uint64
	// CreationWindow is the creation window now: the queue of creations
	// a new session is admitted behind without more ado (creationWindow).
	CreationWindow int64
	Fenced         bool // whether it is fenced now
}

type counters struct {
	created, adopted, notFound, negativeHits, ownedElsewhere, claimConflicts atomic.Uint64
	adoptErrors, ownerReads, leaseReads, released, renewals, renewFailures   atomic.Uint64
	fences, refreshes, lost, creationRefusals, leaseVouched, voidRecords     atomic.Uint64
	leaseWaits, probes                                                       atomic.Uint64
}

// Stats returns the manager's counters.
func (m *Manager) Stats() Stats {
	m.mu.RLock()
	owned, fenced := len(m.owned), m.fenced
	m.mu.RUnlock()
	c := &m.stats
	return Stats{
		Owned: owned, Created: c.created.Load(), Adopted: c.adopted.Load(), NotFound: c.notFound.Load(),
		NegativeHits: c.negativeHits.Load(), OwnedElsewhere: c.ownedElsewhere.Load(),
		ClaimConflicts: c.claimConflicts.Load(), AdoptErrors: c.adoptErrors.Load(),
		OwnerReads: c.ownerReads.Load(), LeaseReads: c.leaseReads.Load(), Released: c.released.Load(),
		Renewals: c.renewals.Load(), RenewFailures: c.renewFailures.Load(), Fences: c.fences.Load(), Fenced: fenced,
		Refreshes: c.refreshes.Load(), Lost: c.lost.Load(), CreationRefusals: c.creationRefusals.Load(), CreationProbes: c.probes.Load(),
		LeaseVouched: c.leaseVouched.Load(), VoidRecords: c.voidRecords.Load(), LeaseWaits: c.leaseWaits.Load(),
		CreationWindow: m.window.current(),
	}
}
