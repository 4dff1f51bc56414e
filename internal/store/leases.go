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
	RenewedAt time.Time
	TTL       time.Duration // the TTL the node renews with
	Remaining time.Duration // what is left of it, as Cassandra counts
}

// RenewLease writes node's lease with the given TTL (rounded up to seconds).
func (st *Store) RenewLease(ctx context.Context, node string, ttl time.Duration) error {
	err := st.s.Query(st.stmts.upsertLease, node, time.Now(), ttl.Milliseconds(), ttlSeconds(ttl)).
		Idempotent(true).SetSpeculativeExecutionPolicy(st.hedged()).ExecContext(ctx)
	return wrap("renew lease", "", err)
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
