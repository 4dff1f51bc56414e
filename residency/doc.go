// Package residency decides who owns which session: node liveness leases,
// ownership epochs, the adoption protocol, fencing, the negative-lookup cache
// and single-flight lookups. It never imports the adapter.
//
// It is a building block: hosts use package adapter, which joins it with the
// write-behind buffer and the Cassandra store and expresses its API, errors
// included, in types of its own. Import residency only to build another
// façade or to test the protocol on its own.
//
// Ownership. Every session has an ownership row (owner node, epoch, released
// flag) written only by lightweight transactions. A brand-new session is
// recorded at epoch 1 by the node that created it (Prepare, as soon as the
// host accepts its first changes, joined by its first flush's EnsureOwned), with
// INSERT IF NOT EXISTS: the same row is later compare-and-set by claims, and
// Cassandra only guarantees linearizability when every write of a row goes
// through Paxos, so a plain insert is not safe to mix with claims. It costs one
// lightweight transaction per session lifetime, not per change.
//
// Adoption. Adopt claims a non-resident session by compare-and-set on its
// epoch (exactly one claimant wins), reads its state, and fences the previous
// owner: it writes a partition tombstone at the new epoch's base timestamp and
// rewrites the restored items just above it. Every write carries a timestamp
// with the epoch in its high bits, so no write of an older owner, however late
// and whatever its clock says, can become visible after the fence.
//
// Liveness. A Manager renews its node's lease row (a TTL'd heartbeat) every
// LeaseRenew. When it cannot renew before the lease would expire it
// self-fences: it pauses the buffer's flushing and calls OnFenced with the
// sessions it owned. When renewals succeed again it checks each session's
// ownership row, drops the ones a peer adopted meanwhile, resumes, and calls
// OnRecovered with those it lost; the others are still this node's.
package residency
