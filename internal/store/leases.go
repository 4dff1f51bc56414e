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
	RenewedAt time.Time     // when the renewal started, on the node's clock
	TTL       time.Duration // how long the node acts as owner after RenewedAt
	Remaining time.Duration // what is left of the row's own TTL, as Cassandra counts
}

// LiveAt reports whether the lease may still be held at now (a peer's clock):
// until RenewedAt + TTL + grace, where grace bounds the skew between the
// node's clock and the peer's. The node itself stops acting as owner TTL
// after the renewal started, measured on its monotonic clock, so a peer that
// finds the lease expired knows the node has stopped.
func (l Lease) LiveAt(now time.Time, grace time.Duration) bool {
	return now.Before(l.RenewedAt.Add(l.TTL + grace))
}

// RenewLease writes node's lease: renewed at renewedAt (the node's clock when
// the renewal started) for ttl. The row itself lives long enough that
// Cassandra's whole-second TTLs and clock skew up to grace between the
// node, Cassandra and peers never remove it before LiveAt turns false:
// ttl + 2*grace rounded up to seconds, plus one second (Cassandra expires a
// cell when its clock reaches the second the TTL ends in, so a row can vanish
// up to a second early).
func (st *Store) RenewLease(ctx context.Context, node string, renewedAt time.Time, ttl, grace time.Duration) error {
	err := st.s.Query(st.stmts.upsertLease, node, renewedAt, ttl.Milliseconds(), ttlSeconds(ttl+2*grace)+1).
		Idempotent(true).SetSpeculativeExecutionPolicy(st.hedged()).ExecContext(ctx)
	return wrap("renew lease", "", err)
}

// DropLease deletes node's lease, so peers see the node gone at once.
func (st *Store) DropLease(ctx context.Context, node string) error {
	err := st.s.Query(st.stmts.deleteLease, node).Idempotent(true).ExecContext(ctx)
	return wrap("drop lease", "", err)
}

// ReadLease returns node's lease; found is false when it has expired or never
// existed, that is, when the node is not live.
func (st *Store) ReadLease(ctx context.Context, node string) (l Lease, found bool, err error) {
	var ttlMS int64
	var remaining int
	err = st.s.Query(st.stmts.selectLease, node).Idempotent(true).SetSpeculativeExecutionPolicy(st.hedged()).
		ScanContext(ctx, &l.RenewedAt, &ttlMS, &remaining)
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
	for iter.Scan(&l.Node, &l.RenewedAt, &ttlMS, &remaining) {
		l.TTL = time.Duration(ttlMS) * time.Millisecond
		l.Remaining = time.Duration(remaining) * time.Second
		out = append(out, l)
	}
	if err := iter.Close(); err != nil {
		return nil, wrap("list leases", "", err)
	}
	return out, nil
}
