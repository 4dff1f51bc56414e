package store

import (
	"context"
	"fmt"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/buffer"
)

// formatV1 marks a value stored as the raw bytes the host committed.
const formatV1 int8 = 1

// readPageSize is how many items one page of a session read carries.
const readPageSize = 1000

// Item is one key of a session: a value to write, or a delete. It is the
// buffer's item type, so a snapshot's items are written without copying.
type Item = buffer.Item

// Write is one session's snapshot at one ownership epoch.
type Write struct {
	Session string
	Epoch   uint64
	// Seq is the buffer's sequence of this snapshot. The write reserves Seq and
	// Seq+1: an End tombstone goes at Timestamp(Epoch, Seq), items at Seq+1.
	Seq   uint64
	Ended bool // delete the whole partition before writing Items
	Items []Item
}

// Bytes is an estimate of the write's size: keys plus values.
func (w *Write) Bytes() int {
	n := len(w.Session)
	for i := range w.Items {
		n += len(w.Items[i].Key) + len(w.Items[i].Value)
	}
	return n
}

// WriteSession applies w as one single-partition unlogged batch, which
// Cassandra applies atomically and in isolation. Every statement carries an
// explicit timestamp and puts carry the state TTL, so a retry is idempotent
// and a write with an older (epoch, seq) never replaces a newer one.
func (st *Store) WriteSession(ctx context.Context, w *Write) error {
	if err := st.opts.Limits.CheckSession(w.Session); err != nil {
		return err
	}
	for i := range w.Items {
		if w.Items[i].Delete {
			if err := st.opts.Limits.CheckItem(w.Items[i].Key, nil); err != nil {
				return err
			}
			continue
		}
		if err := st.opts.Limits.CheckItem(w.Items[i].Key, w.Items[i].Value); err != nil {
			return err
		}
	}
	endTS, err := Timestamp(w.Epoch, w.Seq)
	if err != nil {
		return wrap("write", w.Session, err)
	}
	itemTS, err := Timestamp(w.Epoch, w.Seq+1)
	if err != nil {
		return wrap("write", w.Session, err)
	}
	if !w.Ended && len(w.Items) == 1 {
		// One statement needs no batch: Cassandra handles a plain write with less work.
		e := st.appendItems(nil, w.Session, itemTS, w.Items)[0]
		return wrap("write", w.Session, st.s.Query(e.Stmt, e.Args...).Idempotent(true).ExecContext(ctx))
	}
	b := st.s.Batch(gocql.UnloggedBatch).WithContext(ctx)
	b.Entries = make([]gocql.BatchEntry, 0, len(w.Items)+1)
	if w.Ended {
		b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: st.stmts.deleteSession, Args: []any{endTS, w.Session}, Idempotent: true})
	}
	b.Entries = st.appendItems(b.Entries, w.Session, itemTS, w.Items)
	return st.exec(ctx, "write", w.Session, b)
}

func (st *Store) appendItems(entries []gocql.BatchEntry, session string, ts int64, items []Item) []gocql.BatchEntry {
	for i := range items {
		it := &items[i]
		if it.Delete {
			entries = append(entries, gocql.BatchEntry{Stmt: st.stmts.deleteItem, Args: []any{ts, session, it.Key}, Idempotent: true})
			continue
		}
		entries = append(entries, gocql.BatchEntry{Stmt: st.stmts.insertItem, Args: []any{session, it.Key, it.Value, formatV1, ts, st.ttl}, Idempotent: true})
	}
	return entries
}

// exec runs a batch of one session; a batch of one statement runs as a plain
// query, which Cassandra handles with less work.
func (st *Store) exec(ctx context.Context, op, session string, b *gocql.Batch) error {
	switch len(b.Entries) {
	case 0:
		return nil
	case 1:
		e := b.Entries[0]
		return wrap(op, session, st.s.Query(e.Stmt, e.Args...).Idempotent(true).ExecContext(ctx))
	}
	return wrap(op, session, b.ExecContext(ctx))
}

// Fence makes epoch's owner the only writer whose data can be seen: it writes
// a partition tombstone at EpochBase(epoch), which shadows every write of any
// older epoch (including ones still in flight from a fenced owner), and
// rewrites items just above it, so the state the adopter restores stays
// persisted. One atomic single-partition batch.
func (st *Store) Fence(ctx context.Context, session string, epoch uint64, items []Item) error {
	if err := st.opts.Limits.CheckSession(session); err != nil {
		return err
	}
	if epoch == 0 || epoch > MaxEpoch {
		return wrap("fence", session, permanent(fmt.Errorf("epoch %d outside 1..%d", epoch, uint64(MaxEpoch))))
	}
	base := EpochBase(epoch)
	b := st.s.Batch(gocql.UnloggedBatch).WithContext(ctx)
	b.Entries = make([]gocql.BatchEntry, 0, len(items)+1)
	b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: st.stmts.deleteSession, Args: []any{base, session}, Idempotent: true})
	b.Entries = st.appendItems(b.Entries, session, base+1, items)
	return st.exec(ctx, "fence", session, b)
}

// ReadState returns every item of a session in key order, reading it page by
// page. A session with no items returns an empty slice. A row that cannot be
// decoded fails the read of that session only, with ErrCorrupt.
func (st *Store) ReadState(ctx context.Context, session string) ([]Item, error) {
	if err := st.opts.Limits.CheckSession(session); err != nil {
		return nil, err
	}
	iter := st.s.Query(st.stmts.selectItems, session).PageSize(readPageSize).Idempotent(true).
		SetSpeculativeExecutionPolicy(st.hedged()).IterContext(ctx)
	var (
		items  []Item
		key    string
		value  []byte
		format int8
	)
	var bad error
	for iter.Scan(&key, &value, &format) {
		if format != formatV1 && bad == nil {
			bad = fmt.Errorf("%w: session %q key %q has format %d, this version reads %d", ErrCorrupt, session, key, format, formatV1)
		}
		items = append(items, Item{Key: key, Value: value})
		value = nil
	}
	if err := iter.Close(); err != nil {
		return nil, wrap("read", session, err)
	}
	if bad != nil {
		return nil, wrap("read", session, permanent(bad))
	}
	return items, nil
}
