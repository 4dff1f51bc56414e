package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Owned is one entry of the owner index.
type Owned struct {
	Session string
	Epoch   uint64
	// TTL, for MoveIndex, is the moved entry's TTL (its session's family's);
	// 0: MoveIndex's ttl.
	TTL time.Duration
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

// indexBatchRows is how many index rows one batch of MoveIndex carries:
// about 5 KiB, under Cassandra's batch_size_warn_threshold.
const indexBatchRows = 100

// MoveIndex moves the index entries of moved from node from to node to, at
// the epochs given, and removes the stale entries of from: single-partition
// batches of inserts into to's entries, then of deletes from from's (a bulk
// takeover's index update, a request per hundred sessions instead of two
// per session).
func (st *Store) MoveIndex(ctx context.Context, from, to string, moved []Owned, stale []string, ttl time.Duration) error {
	var batches []*gocql.Batch
	for chunk := range slices.Chunk(moved, indexBatchRows) {
		b := st.s.Batch(gocql.UnloggedBatch)
		for _, o := range chunk {
			d := ttl
			if o.TTL > 0 {
				d = o.TTL
			}
			b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: st.stmts.indexOwner, Args: []any{to, o.Session, int64(o.Epoch), ttlSeconds(d)}, Idempotent: true})
		}
		batches = append(batches, b)
	}
	gone := make([]string, 0, len(moved)+len(stale))
	for _, o := range moved {
		gone = append(gone, o.Session)
	}
	for chunk := range slices.Chunk(append(gone, stale...), indexBatchRows) {
		b := st.s.Batch(gocql.UnloggedBatch)
		for _, s := range chunk {
			b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: st.stmts.unindexOwner, Args: []any{from, s}, Idempotent: true})
		}
		batches = append(batches, b)
	}
	// A few at once: each is one partition's rows, on its replicas.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, 8)
	)
	for _, b := range batches {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := st.exec(ctx, "move index", from, b); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
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
