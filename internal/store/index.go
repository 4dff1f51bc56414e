package store

import (
	"context"
	"errors"
	"fmt"
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

// Index entries are written at epoch-ranked timestamps, as state is: an
// entry of epoch E at indexStamp(E), and the delete that an adoption at
// epoch E makes of the previous owner's entry at indexDelete(E), which
// shadows that owner's entries of every older epoch and none of its later
// ones. With the clients' clocks, a move of an adoption landing after the
// previous owner had won the session back (a takeover's moves go in
// chunks, after its claims), or written by a node whose clock ran ahead,
// deleted the entry of the node that owned the session: a bulk takeover of
// that node then missed the session. An End's delete is that of an
// adoption at the next epoch. A delete that names no epoch (a stale
// entry's) deletes the entry as it reads it, at its write time, so an entry
// written after the read survives it.
//
// All of them sit indexBase above the state's timestamps: an earlier release
// wrote its entries and deletes at its clock's time (microseconds since
// 1970), which an epoch-ranked timestamp of an epoch under about 100 is
// below. Lifted past any such time, a move or an entry written again
// outranks what an earlier release wrote, where it would have lost to it
// (an entry written again at its epoch to renew its TTL kept the old TTL,
// and the index lost the session when that ran out).
const indexBase int64 = 1 << 52 // microseconds: the year 2112

// maxIndexEpoch is the largest epoch an index timestamp can carry.
const maxIndexEpoch = MaxEpoch - uint64(indexBase>>SeqBits)

// indexStamp is the write timestamp of an index entry of epoch.
func indexStamp(epoch uint64) (int64, error) {
	if epoch > maxIndexEpoch {
		return 0, permanent(fmt.Errorf("epoch %d over the owner index's limit %d", epoch, maxIndexEpoch))
	}
	ts, err := Timestamp(epoch, 1)
	return indexBase + ts, err
}

// indexDelete is the timestamp of the delete an adoption at epoch makes of
// the previous owner's entry: above its entries of every older epoch.
func indexDelete(epoch uint64) int64 { return indexBase + EpochBase(epoch) }

// IndexOwner records that node owns session at epoch, for bulk takeover.
func (st *Store) IndexOwner(ctx context.Context, node, session string, epoch uint64, ttl time.Duration) error {
	ts, err := indexStamp(epoch)
	if err != nil {
		return wrap("index owner", session, err)
	}
	err = st.s.Query(st.stmts.indexOwner, node, session, int64(epoch), ts, ttlSeconds(ttl)).Idempotent(true).ExecContext(ctx)
	return wrap("index owner", session, err)
}

// UnindexOwner removes node's entries of session of epoch and every older
// one: an End's at the epoch the session was held at. An entry of a later
// epoch (the session started again) survives it, and a late write of the
// ended epoch's entry (a refresh's) stays shadowed. One request, no read.
func (st *Store) UnindexOwner(ctx context.Context, node, session string, epoch uint64) error {
	err := st.s.Query(st.stmts.unindexOwner, indexDelete(epoch+1), node, session).Idempotent(true).ExecContext(ctx)
	return wrap("unindex owner", session, err)
}

// unindexEntries returns the deletes of node's entries of sessions, each at
// the write time it is read at (none for an entry that is absent).
func (st *Store) unindexEntries(ctx context.Context, node string, sessions []string) ([]gocql.BatchEntry, error) {
	var entries []gocql.BatchEntry
	iter := st.s.Query(st.stmts.selectStamps, node, sessions).Idempotent(true).IterContext(ctx)
	var (
		session string
		ts      int64
	)
	for iter.Scan(&session, &ts) {
		entries = append(entries, gocql.BatchEntry{Stmt: st.stmts.unindexOwner, Args: []any{ts, node, session}, Idempotent: true})
	}
	return entries, iter.Close()
}

// indexBatchRows is how many index rows one batch of MoveIndex carries:
// about 5 KiB, under Cassandra's batch_size_warn_threshold.
const indexBatchRows = 100

// MoveIndex moves the index entries of moved from node from to node to, at
// the epochs given (from keeps an entry of a later epoch), and removes the
// stale entries of from as they are read: single-partition
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
			ts, err := indexStamp(o.Epoch)
			if err != nil {
				return wrap("move index", o.Session, err)
			}
			b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: st.stmts.indexOwner, Args: []any{to, o.Session, int64(o.Epoch), ts, ttlSeconds(d)}, Idempotent: true})
		}
		batches = append(batches, b)
	}
	for chunk := range slices.Chunk(moved, indexBatchRows) {
		b := st.s.Batch(gocql.UnloggedBatch)
		for _, o := range chunk {
			b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: st.stmts.unindexOwner, Args: []any{indexDelete(o.Epoch), from, o.Session}, Idempotent: true})
		}
		batches = append(batches, b)
	}
	for chunk := range slices.Chunk(stale, indexBatchRows) {
		b := st.s.Batch(gocql.UnloggedBatch)
		var err error
		if b.Entries, err = st.unindexEntries(ctx, from, chunk); err != nil {
			return wrap("move index", "", err)
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
