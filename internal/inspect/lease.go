package inspect

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/internal/storeconf"
)

// Lease is a node's liveness lease. A node holds one while it runs and renews
// it; a node whose lease has expired is dead, and its sessions adoptable.
type Lease struct {
	// Node is the node's HOLDOVER_NODE_ID.
	Node string
	// RenewedAt is when the node last renewed the lease (Cassandra's clock).
	RenewedAt time.Time
	// TTL is the lease's time to live as peers judge it (the node's
	// HOLDOVER_LEASE_TTL): the life the node wrote (its TTL less its clock
	// skew, how long it acts as owner after a renewal) +
	// HOLDOVER_MAX_CLOCK_SKEW.
	TTL time.Duration
	// Remaining is what is left of the lease as peers judge it: until
	// RenewedAt + TTL, on this machine's clock.
	Remaining time.Duration
	// Incarnation names the process holding the lease (a random ID chosen at
	// each Open), so a restart of the node shows as a new incarnation.
	Incarnation string
	// Since is when the node's current unbroken lease began, on its clock:
	// when this incarnation started, or when it renewed again after a lapse
	// (zero: written by a release that did not record it).
	Since time.Time
}

// Lease reads node's lease. It returns ErrNotFound when the node is not live:
// its lease expired as peers judge it, or it never ran.
func (i *Inspector) Lease(ctx context.Context, node string) (Lease, error) {
	if node == "" { // no node has an empty ID; Cassandra refuses an empty key
		return Lease{}, ErrNotFound
	}
	sl, found, err := i.st.ReadLease(ctx, node)
	if err != nil {
		return Lease{}, storeconf.Errors(err)
	}
	if l, live := i.lease(sl, time.Now()); found && live {
		return l, nil
	}
	return Lease{}, ErrNotFound
}

// lease converts a stored lease; live is false when peers take it as expired
// (its row outlives it a little).
func (i *Inspector) lease(sl store.Lease, now time.Time) (l Lease, live bool) {
	if !sl.LiveAt(now, i.skew) {
		return Lease{}, false
	}
	return Lease{Node: sl.Node, RenewedAt: sl.RenewedAt, TTL: sl.TTL + i.skew, Remaining: sl.Ends(i.skew).Sub(now),
		Incarnation: sl.Incarnation, Since: sl.Since}, true
}

// Leases lists every live lease, in node order.
func (i *Inspector) Leases(ctx context.Context) ([]Lease, error) {
	sls, err := i.st.Leases(ctx)
	if err != nil {
		return nil, storeconf.Errors(err)
	}
	now := time.Now()
	leases := make([]Lease, 0, len(sls))
	for _, sl := range sls {
		if l, live := i.lease(sl, now); live {
			leases = append(leases, l)
		}
	}
	slices.SortFunc(leases, func(a, b Lease) int { return cmp.Compare(a.Node, b.Node) })
	return leases, nil
}
