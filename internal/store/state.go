package store

import (
	"context"
	"fmt"
	"sync"

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
	// More reports that more parts of the same snapshot follow, at the same
	// Seq (a snapshot split by the buffer): such a part is never written
	// whole (see rebase.go), since the later parts' items, at the same
	// timestamp, would tie with the persisted values it rewrote.
	More bool
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
// explicit timestamp and puts carry the session's state TTL (Options.TTLFor,
// or StateTTL), so a retry is idempotent
// and a write with an older (epoch, seq) never replaces a newer one.
//
// A write that brings the deletes written to its session since it was last
// written whole to Options.RebaseDeletes writes the session whole instead
// (see rebase.go): Cassandra would otherwise fail every read of a session
// that deleted more items than its tombstone_failure_threshold.
func (st *Store) WriteSession(ctx context.Context, w *Write) error {
	if st.rebaseDue(w) {
		return st.rebase(ctx, w)
	}
	return st.writePlain(ctx, w)
}

// writePlain is WriteSession without the check for a rebase.
func (st *Store) writePlain(ctx context.Context, w *Write) error {
	b := st.s.Batch(gocql.UnloggedBatch)
	var err error
	if b.Entries, err = st.writeEntries(nil, w); err != nil {
		return err
	}
	if err = st.exec(ctx, "write", w.Session, b); err == nil { // one statement runs as a plain write
		st.counted(w)
	}
	return err
}

// writeEntries appends the statements of w to entries, after checking w against
// the limits: the End's partition delete at Timestamp(Epoch, Seq), then the
// items at Seq+1.
func (st *Store) writeEntries(entries []gocql.BatchEntry, w *Write) ([]gocql.BatchEntry, error) {
	endTS, itemTS, err := st.checkWrite(w)
	if err != nil {
		return entries, err
	}
	if w.Ended {
		entries = append(entries, gocql.BatchEntry{Stmt: st.stmts.deleteSession, Args: []any{endTS, w.Session}, Idempotent: true})
	}
	return st.appendItems(entries, w.Session, itemTS, w.Items), nil
}

// checkWrite checks w against the limits and returns the timestamps of its
// partition delete and of its items.
func (st *Store) checkWrite(w *Write) (endTS, itemTS int64, err error) {
	if err := st.opts.Limits.CheckSession(w.Session); err != nil {
		return 0, 0, err
	}
	for i := range w.Items {
		var v []byte
		if !w.Items[i].Delete {
			v = w.Items[i].Value
		}
		if err := st.opts.Limits.CheckItem(w.Items[i].Key, v); err != nil {
			return 0, 0, err
		}
	}
	if endTS, err = Timestamp(w.Epoch, w.Seq); err == nil {
		itemTS, err = Timestamp(w.Epoch, w.Seq+1)
	}
	return endTS, itemTS, wrap("write", w.Session, err)
}

// WriteSessions writes the snapshots of several sessions and stores the outcome
// of ws[i] in errs[i]. Sessions whose partitions have the same first replica
// travel in one unlogged batch: each session's rows remain one partition
// update, which Cassandra still applies atomically and in isolation, while the
// group costs the coordinator one request instead of one per session. Groups
// for different replicas run concurrently. When a batch fails permanently, its
// sessions are written one by one, so only a session at fault is refused.
//
// Keep groups small: Cassandra warns about unlogged batches spanning more than
// unlogged_batch_across_partitions_warn_threshold partitions (10) or larger
// than batch_size_warn_threshold (5 KiB), and refuses them above
// batch_size_fail_threshold (50 KiB).
func (st *Store) WriteSessions(ctx context.Context, ws []*Write, errs []error) {
	valid := make([]int, 0, len(ws))
	var whole []int // written whole, each on its own (see WriteSession)
	for i, w := range ws {
		if _, _, err := st.checkWrite(w); err != nil {
			errs[i] = err
			continue
		}
		if st.rebaseDue(w) {
			whole = append(whole, i)
			continue
		}
		valid = append(valid, i)
	}
	groups := st.replicaGroups(valid, func(i int) string { return ws[i].Session })
	if len(groups) == 1 && len(whole) == 0 {
		st.writeGroup(ctx, ws, groups[0], errs)
		return
	}
	var wg sync.WaitGroup
	for _, i := range whole {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.rebase(ctx, ws[i])
		}()
	}
	for _, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.writeGroup(ctx, ws, g, errs)
		}()
	}
	wg.Wait()
}

// writeGroup writes ws[idx...] in one unlogged batch.
func (st *Store) writeGroup(ctx context.Context, ws []*Write, idx []int, errs []error) {
	switch len(idx) {
	case 0:
		return
	case 1:
		errs[idx[0]] = st.writePlain(ctx, ws[idx[0]])
		return
	}
	b := st.s.Batch(gocql.UnloggedBatch)
	for _, i := range idx {
		b.Entries, _ = st.writeEntries(b.Entries, ws[i]) // checked by checkWrite
	}
	err := b.SpeculativeExecutionPolicy(st.hedged()).ExecContext(ctx)
	if err == nil {
		for _, i := range idx {
			st.counted(ws[i])
		}
		return
	}
	if isPermanent(err) {
		for _, i := range idx {
			errs[i] = st.writePlain(ctx, ws[i])
		}
		return
	}
	for _, i := range idx {
		errs[i] = wrap("write", ws[i].Session, err)
	}
}

// route is what the token-aware policy needs to pick the replicas of a session's
// partition: the session ID is the partition key, and the routing key of a text
// key is its bytes.
type route struct{ keyspace, table, key string }

func (r route) GetRoutingKey() ([]byte, error) { return []byte(r.key), nil }
func (r route) Keyspace() string               { return r.keyspace }
func (r route) Table() string                  { return r.table }
func (r route) IsIdempotent() bool             { return true }
func (r route) GetHostID() string              { return "" }
func (r route) Statement() gocql.Statement     { return nil }

// appendItems appends the statements writing items at ts, puts with session's
// TTL.
func (st *Store) appendItems(entries []gocql.BatchEntry, session string, ts int64, items []Item) []gocql.BatchEntry {
	ttl := st.ttlOf(session)
	for i := range items {
		it := &items[i]
		if it.Delete {
			entries = append(entries, gocql.BatchEntry{Stmt: st.stmts.deleteItem, Args: []any{ts, session, it.Key}, Idempotent: true})
			continue
		}
		entries = append(entries, gocql.BatchEntry{Stmt: st.stmts.insertItem, Args: []any{session, it.Key, storedValue(it.Value), formatV1, ts, ttl}, Idempotent: true})
	}
	return entries
}

// ttlOf is the TTL in seconds of session's state items: Options.TTLFor's when
// it gives one, StateTTL otherwise.
func (st *Store) ttlOf(session string) int {
	if st.opts.TTLFor != nil {
		if d := st.opts.TTLFor(session); d != 0 {
			return ttlSeconds(d)
		}
	}
	return st.ttl
}

// storedValue is v as the value column stores it. An empty value (nil in an
// Item) is a present item, so it is written as a zero-length blob: bound as nil
// it would be a null, which Cassandra writes as a cell tombstone. Deletes go
// through deleteItem, never here.
func storedValue(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

// exec runs a batch of one session; a batch of one statement runs as a plain
// query, which Cassandra handles with less work. Every write carries explicit
// timestamps, so it is idempotent and hedged: when a replica that died without
// closing its connections holds it, the next replica takes it after the hedge
// delay instead of the flush waiting for the whole timeout (which would hold
// unwritten changes past HOLDOVER_MAX_WINDOW).
func (st *Store) exec(ctx context.Context, op, session string, b *gocql.Batch) error {
	return wrap(op, session, st.run(ctx, b))
}

// run is exec without the wrapping of its error.
func (st *Store) run(ctx context.Context, b *gocql.Batch) error {
	switch len(b.Entries) {
	case 0:
		return nil
	case 1:
		e := b.Entries[0]
		return st.s.Query(e.Stmt, e.Args...).Idempotent(true).SetSpeculativeExecutionPolicy(st.hedged()).ExecContext(ctx)
	}
	return b.SpeculativeExecutionPolicy(st.hedged()).ExecContext(ctx)
}

// Fence makes epoch's owner the only writer whose data can be seen: it writes
// a partition tombstone at EpochBase(epoch), which shadows every write of any
// older epoch (including ones still in flight from a fenced owner), and
// rewrites items just above it, so the state the adopter restores stays
// persisted. One atomic single-partition batch.
func (st *Store) Fence(ctx context.Context, session string, epoch uint64, items []Item) error {
	f := Fencing{Session: session, Epoch: epoch, Items: items}
	if err := st.checkFence(&f); err != nil {
		return err
	}
	return st.fence(ctx, &f)
}

// ReadState returns every item of a session in key order, reading it page by
// page. A session with no items returns an empty slice. A deleted item is
// absent; an item with an empty value is present with a zero-length (nil)
// Value. A row that cannot be decoded fails the read of that session only,
// with ErrCorrupt.
//
// What it returns is a state the session had: Cassandra applies a snapshot
// (one single-partition batch) atomically and in isolation, but each page is
// a read of its own, so a snapshot that lands between two pages would be seen
// in the later pages only, and an adoption would restore, and its fence
// persist, a state the session never had (I2). A read of several pages is
// therefore checked: the keys of all pages but the last are read again, with
// their write times, and the read counts only if they are unchanged (any
// write that landed between pages changed a key read before it). Otherwise
// it is read again, at most stableReads times, and then fails (transient).
func (st *Store) ReadState(ctx context.Context, session string) ([]Item, error) {
	if err := st.opts.Limits.CheckSession(session); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		items, stamps, upTo, err := st.readPages(ctx, session)
		if err != nil || upTo < 0 {
			return items, err
		}
		same, err := st.unchanged(ctx, session, items[:upTo+1], stamps[:upTo+1])
		if err != nil {
			return nil, wrap("read", session, err)
		}
		if same {
			return items, nil
		}
		st.tornReads.Add(1)
		if attempt == stableReads {
			return nil, wrap("read", session, fmt.Errorf("its %d items span several pages, and writes landed between the pages of each of %d reads", len(items), stableReads))
		}
	}
}

// stableReads bounds how many times ReadState reads a session of several
// pages that writes keep changing while it is read.
const stableReads = 4

// readPages reads session's items and their write times. upTo is the index
// of the last item read before the last page (-1: one page).
func (st *Store) readPages(ctx context.Context, session string) (items []Item, stamps []int64, upTo int, err error) {
	iter := st.s.Query(st.stmts.selectItems, session).PageSize(readPageSize).Idempotent(true).
		SetSpeculativeExecutionPolicy(st.hedged()).IterContext(ctx)
	var (
		key    string
		value  []byte
		format int8
		stamp  int64
		bad    error
	)
	upTo = -1
	for {
		if iter.WillSwitchPage() {
			upTo = len(items) - 1
		}
		if !iter.Scan(&key, &value, &format, &stamp) {
			break
		}
		if format != formatV1 && bad == nil {
			bad = fmt.Errorf("%w: session %q key %q has format %d, this version reads %d", ErrCorrupt, session, key, format, formatV1)
		}
		items = append(items, Item{Key: key, Value: value})
		stamps = append(stamps, stamp)
		value = nil
	}
	if err := iter.Close(); err != nil {
		return nil, nil, -1, wrap("read", session, err)
	}
	if bad != nil {
		return nil, nil, -1, wrap("read", session, permanent(bad))
	}
	return items, stamps, upTo, nil
}

// unchanged reports whether session's keys up to the last of items are
// still items' keys, with the write times stamps.
func (st *Store) unchanged(ctx context.Context, session string, items []Item, stamps []int64) (bool, error) {
	iter := st.s.Query(st.stmts.selectItemsTo, session, items[len(items)-1].Key).PageSize(readPageSize).
		Idempotent(true).SetSpeculativeExecutionPolicy(st.hedged()).IterContext(ctx)
	var (
		key   string
		stamp int64
		n     int
	)
	same := true
	for iter.Scan(&key, &stamp) {
		if n >= len(items) || key != items[n].Key || stamp != stamps[n] {
			same = false
		}
		n++
	}
	if err := iter.Close(); err != nil {
		return false, err
	}
	return same && n == len(items), nil
}
