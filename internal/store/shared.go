package store

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// A shared family is state every node may write and read: it has no owner, no
// epochs and no fencing. Its sessions live in the shared table, one partition
// per family that every reader reads whole, so a shared family is for small
// data (settings), not for sessions of any size. Concurrent writes resolve key
// by key by their write timestamps, which the writers choose (microseconds of
// wall-clock time): the last writer wins, whatever order the writes arrive in.

// SharedWrite is one flush of a session of a shared family.
type SharedWrite struct {
	Family, Session string
	// TS is the write's timestamp in microseconds since the Unix epoch,
	// 0..math.MaxInt64-1. The write reserves TS and TS+1: the End's delete
	// goes at TS, items (puts and deletes) at TS+1, so successive writes of
	// one session should be at least 2 apart.
	TS int64
	// Ended deletes every key of the session (at TS) before Items are written.
	Ended bool
	Items []Item
	// TTL is the TTL of the values written, rounded up to whole seconds.
	// 0: Options.StateTTL.
	TTL time.Duration
}

// SharedItem is one key of a session of a shared family, as ReadShared
// returns it.
type SharedItem struct {
	Session, Key string
	// Value is the stored value; an empty value is present, with a
	// zero-length (nil) Value.
	Value []byte
	// WriteTime is the value's write timestamp in microseconds: the TS+1 of
	// the SharedWrite that wrote it.
	WriteTime int64
}

// WriteShared applies w as one single-partition unlogged batch, which
// Cassandra applies atomically and in isolation. Every statement carries an
// explicit timestamp, so a retry is idempotent, and each key ends with the
// write of the highest timestamp whichever arrived first (at equal timestamps
// Cassandra's rule: a delete wins, then the greater value). The session and
// items are checked against the limits first, and the family like a session
// ID; a refused write writes nothing.
func (st *Store) WriteShared(ctx context.Context, w *SharedWrite) error {
	if err := st.checkShared(w); err != nil {
		return err
	}
	ttl := st.ttl
	if w.TTL != 0 {
		ttl = ttlSeconds(w.TTL)
	}
	b := st.s.Batch(gocql.UnloggedBatch)
	b.Entries = make([]gocql.BatchEntry, 0, len(w.Items)+1)
	if w.Ended {
		b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: st.stmts.deleteShared, Args: []any{w.TS, w.Family, w.Session}, Idempotent: true})
	}
	ts := w.TS + 1
	for i := range w.Items {
		it := &w.Items[i]
		if it.Delete {
			b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: st.stmts.deleteSharedItem, Args: []any{ts, w.Family, w.Session, it.Key}, Idempotent: true})
			continue
		}
		b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: st.stmts.insertShared, Args: []any{w.Family, w.Session, it.Key, storedValue(it.Value), ts, ttl}, Idempotent: true})
	}
	if err := st.run(ctx, b); err != nil {
		return wrap(sharedOp("write", w.Family), w.Session, err)
	}
	return nil
}

// checkShared checks w against the limits and its timestamp against the range
// it reserves.
func (st *Store) checkShared(w *SharedWrite) error {
	if err := st.opts.Limits.checkFamily(w.Family); err != nil {
		return err
	}
	if err := st.opts.Limits.CheckSession(w.Session); err != nil {
		return err
	}
	for i := range w.Items {
		var v []byte
		if !w.Items[i].Delete {
			v = w.Items[i].Value
		}
		if err := st.opts.Limits.CheckItem(w.Items[i].Key, v); err != nil {
			return err
		}
	}
	if w.TS < 0 || w.TS == math.MaxInt64 {
		return wrap(sharedOp("write", w.Family), w.Session, permanent(fmt.Errorf("timestamp %d outside 0..%d", w.TS, int64(math.MaxInt64-1))))
	}
	return nil
}

// ReadShared returns every item of family in (session, key) order, reading
// its partition page by page. A family with no items returns an empty slice;
// deleted and expired items are absent. A row without a value (which the
// store never writes) fails the read with ErrCorrupt.
func (st *Store) ReadShared(ctx context.Context, family string) ([]SharedItem, error) {
	if err := st.opts.Limits.checkFamily(family); err != nil {
		return nil, err
	}
	iter := st.s.Query(st.stmts.selectShared, family).PageSize(readPageSize).Idempotent(true).
		SetSpeculativeExecutionPolicy(st.hedged()).IterContext(ctx)
	var (
		items        []SharedItem
		session, key string
		value        []byte
		written      *int64
		bad          error
	)
	for iter.Scan(&session, &key, &value, &written) {
		if written == nil {
			if bad == nil {
				bad = fmt.Errorf("%w: shared family %q session %q key %q has no value", ErrCorrupt, family, session, key)
			}
			continue
		}
		items = append(items, SharedItem{Session: session, Key: key, Value: value, WriteTime: *written})
		value, written = nil, nil
	}
	if err := iter.Close(); err != nil {
		return nil, wrap(sharedOp("read", family), "", err)
	}
	if bad != nil {
		return nil, wrap(sharedOp("read", family), "", permanent(bad))
	}
	return items, nil
}

// sharedOp names an operation on a shared family in an Error.
func sharedOp(op, family string) string {
	return op + " of shared family " + strconv.Quote(family)
}

// checkFamily reports a family name outside the limits of a session ID, or
// not valid UTF-8 (it is CQL text).
func (l Limits) checkFamily(family string) error {
	if n := len(family); n == 0 || n > l.MaxSessionIDBytes {
		return &LimitError{Field: "family", Limit: l.MaxSessionIDBytes, Got: n}
	}
	if !utf8.ValidString(family) {
		return &LimitError{Field: "family", Limit: l.MaxSessionIDBytes, Got: len(family), Reason: reasonUTF8}
	}
	return nil
}
