package store

import (
	"context"
	"errors"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Lease is a node's liveness row. It exists while the node renews it: the row
// carries a TTL, so a node that stops renewing disappears by itself.
type Lease struct {
	Node      string
	RenewedAt time.Time     // when Cassandra applied the last renewal, on its clock
	TTL       time.Duration // how long the node acts as owner after a renewal
	Remaining time.Duration // what is left of the row's own TTL, as Cassandra counts
	// Incarnation names the process (one Open) that holds the node ID's lease:
	// two processes with one node ID never hold it at once.
	Incarnation string
	// Since is when the node's current unbroken lease began, on the node's
	// own clock: when this incarnation took it, or when it renewed it again
	// after a lapse (before recovering). Every claim the node made before
	// Since and still holds, it has made again since (recovery), so a claim
	// stamped earlier that it has not replaced is void (zero: unknown, as
	// written by an earlier release).
	Since time.Time
}

// LiveAt reports whether the lease may still be held at now (a peer's clock):
// until RenewedAt + TTL + grace, where grace bounds the skew between the
// peer's clock and Cassandra's. The node itself stops acting as owner TTL
// after it sent the renewal (before Cassandra applied it), measured on its
// monotonic clock, so a peer that finds the lease expired knows the node has
// stopped, whatever the node's own wall clock says.
func (l Lease) LiveAt(now time.Time, grace time.Duration) bool {
	return now.Before(l.Ends(grace))
}

// Ends is when peers stop counting the lease live (LiveAt turns false).
func (l Lease) Ends(grace time.Duration) time.Time { return l.RenewedAt.Add(l.TTL + grace) }

// RenewLease renews node's lease for ttl, stamped with the coordinator's
// clock (toTimestamp(now()), at a server-side write timestamp, so the node's
// own clock matters nowhere). With an incarnation it writes that too: every
// cell carries the renewal's TTL, so an incarnation written only when the
// lease was taken would expire a few seconds later, leaving a row whose
// holder nobody can tell (DropLease then deletes nothing and a replaced
// process cannot learn it was). A process renews with its incarnation only
// while its lease is valid; without one (a fenced process), it leaves the
// incarnation as it is: a process that was replaced and renews anyway
// refreshes its successor's lease and learns it was replaced at its next
// CheckLease. The row itself lives long
// enough that Cassandra's whole-second TTLs and clock skew up to grace
// between Cassandra's nodes and the peers never remove it before LiveAt turns
// false: ttl + 2*grace rounded up to seconds, plus one second (Cassandra
// expires a cell when its clock reaches the second the TTL ends in, so a row
// can vanish up to a second early).
func (st *Store) RenewLease(ctx context.Context, node string, ttl, grace time.Duration, since time.Time, incarnation string) error {
	q := st.lease.Query(st.stmts.upsertLease, leaseRowTTL(ttl, grace), ttl.Milliseconds(), since, node)
	if incarnation != "" {
		q = st.lease.Query(st.stmts.renewLeaseAs, leaseRowTTL(ttl, grace), ttl.Milliseconds(), since, incarnation, node)
	}
	err := q.DefaultTimestamp(false).Idempotent(true).SetSpeculativeExecutionPolicy(st.hedged()).ExecContext(ctx)
	return wrap("renew lease", "", err)
}

func leaseRowTTL(ttl, grace time.Duration) int { return ttlSeconds(ttl+2*grace) + 1 }

// TakeLease makes incarnation the holder of node's lease, provided the lease
// is still as the caller read it: absent (found false) or prev, unchanged
// since (a lightweight transaction). It returns false, with the lease as it
// is now, when the lease changed meanwhile.
func (st *Store) TakeLease(ctx context.Context, node, incarnation string, prev Lease, found bool, ttl, grace time.Duration, since time.Time) (bool, Lease, error) {
	row := map[string]any{}
	var q *gocql.Query
	if found {
		q = st.lease.Query(st.stmts.retakeLease, leaseRowTTL(ttl, grace), ttl.Milliseconds(), incarnation, since, node, prev.RenewedAt)
	} else {
		q = st.lease.Query(st.stmts.takeLease, node, ttl.Milliseconds(), incarnation, since, leaseRowTTL(ttl, grace))
	}
	applied, err := q.MapScanCASContext(ctx, row)
	if err != nil {
		return false, Lease{}, wrap("take lease", "", err)
	}
	return applied, leaseFromCAS(node, row), nil
}

// CheckLease renews node's lease if incarnation still holds it (a
// lightweight transaction, so it also sees a takeover in progress). When it
// does not, held is false and cur is the lease as it is (zero when absent).
func (st *Store) CheckLease(ctx context.Context, node, incarnation string, ttl, grace time.Duration, since time.Time) (held bool, cur Lease, err error) {
	row := map[string]any{}
	applied, err := st.lease.Query(st.stmts.checkLease, leaseRowTTL(ttl, grace), ttl.Milliseconds(), since, node, incarnation).MapScanCASContext(ctx, row)
	if err != nil {
		return false, Lease{}, wrap("check lease", "", err)
	}
	return applied, leaseFromCAS(node, row), nil
}

func leaseFromCAS(node string, row map[string]any) Lease {
	l := Lease{Node: node}
	if v, ok := row["renewed_at"].(time.Time); ok {
		l.RenewedAt = v
	}
	if v, ok := row["ttl_ms"].(int64); ok {
		l.TTL = time.Duration(v) * time.Millisecond
	}
	if v, ok := row["incarnation"].(string); ok {
		l.Incarnation = v
	}
	if v, ok := row["since"].(time.Time); ok {
		l.Since = v
	}
	return l
}

// DropLease deletes node's lease if incarnation still holds it, so peers see
// the node gone at once (a lightweight transaction: a process that was
// replaced must not delete its successor's lease).
func (st *Store) DropLease(ctx context.Context, node, incarnation string) error {
	_, err := st.lease.Query(st.stmts.deleteLease, node, incarnation).MapScanCASContext(ctx, map[string]any{})
	return wrap("drop lease", "", err)
}

// ReadLease returns node's lease; found is false when it has expired or never
// existed, that is, when the node is not live.
func (st *Store) ReadLease(ctx context.Context, node string) (l Lease, found bool, err error) {
	var ttlMS int64
	var remaining int
	err = st.s.Query(st.stmts.selectLease, node).Idempotent(true).SetSpeculativeExecutionPolicy(st.hedged()).
		ScanContext(ctx, &l.RenewedAt, &ttlMS, &remaining, &l.Incarnation, &l.Since)
	if errors.Is(err, gocql.ErrNotFound) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, wrap("read lease", "", err)
	}
	l.Node = node
	l.TTL = time.Duration(ttlMS) * time.Millisecond
	l.Remaining = time.Duration(remaining) * time.Second
	return l, true, nil
}

// Leases lists every live lease.
func (st *Store) Leases(ctx context.Context) ([]Lease, error) {
	iter := st.s.Query(st.stmts.selectLeases).Idempotent(true).IterContext(ctx)
	var (
		out       []Lease
		l         Lease
		ttlMS     int64
		remaining int
	)
	for iter.Scan(&l.Node, &l.RenewedAt, &ttlMS, &remaining, &l.Incarnation, &l.Since) {
		l.TTL = time.Duration(ttlMS) * time.Millisecond
		l.Remaining = time.Duration(remaining) * time.Second
		out = append(out, l)
	}
	if err := iter.Close(); err != nil {
		return nil, wrap("list leases", "", err)
	}
	return out, nil
}
