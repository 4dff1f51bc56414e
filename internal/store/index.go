package store

import (
	"context"
	"time"
)

// Owned is one entry of the owner index.
type Owned struct {
	Session string
	Epoch   uint64
}

// IndexOwner records that node owns session at epoch, for bulk takeover.
func (st *Store) IndexOwner(ctx context.Context, node, session string, epoch uint64, ttl time.Duration) error {
	err := st.s.Query(st.stmts.indexOwner, node, session, int64(epoch), ttlSeconds(ttl)).Idempotent(true).ExecContext(ctx)
	return wrap("index owner", session, err)
}

// UnindexOwner removes session from node's index entries.
func (st *Store) UnindexOwner(ctx context.Context, node, session string) error {
	err := st.s.Query(st.stmts.unindexOwner, node, session).Idempotent(true).ExecContext(ctx)
	return wrap("unindex owner", session, err)
}

// OwnedBy calls fn for each session the index lists under node, page by page,
// until fn returns false. Entries may be stale (the index is a hint): check the
// ownership row before acting on one.
func (st *Store) OwnedBy(ctx context.Context, node string, fn func(Owned) bool) error {
	iter := st.s.Query(st.stmts.selectOwned, node).PageSize(readPageSize).Idempotent(true).IterContext(ctx)
	var (
		o     Owned
		epoch int64
	)
	for iter.Scan(&o.Session, &epoch) {
		o.Epoch = uint64(epoch)
		if !fn(o) {
			break
		}
	}
	return wrap("list owned", "", iter.Close())
}
