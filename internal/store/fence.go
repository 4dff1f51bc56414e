package store

import (
	"context"
	"fmt"
	"slices"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Fencing is one session's fence (see Fence): the epoch its new owner
// claimed and the items that owner restores.
type Fencing struct {
	Session string
	Epoch   uint64
	Items   []Item
}

// Bytes is an estimate, on the high side, of the fence's size in a batch
// as Cassandra counts it against batch_size_warn_threshold: the partition
// key and tombstone, and each item's key, value and cell metadata.
func (f *Fencing) Bytes() int {
	const perRow = 32 // timestamps, TTL, the format cell
	n := len(f.Session) + perRow
	for i := range f.Items {
		n += len(f.Items[i].Key) + len(f.Items[i].Value) + perRow
	}
	return n
}

// FenceSessions fences several sessions, each as Fence does, and stores the
// outcome of fs[i] in errs[i]. The fences of sessions whose partitions have
// the same first replica travel in one unlogged batch: each session's fence
// remains one partition update, which Cassandra applies atomically and in
// isolation (its tombstone never lands without its restored items), while
// the group costs the coordinator one request instead of one per session.
// Groups for different replicas run concurrently. When a batch fails
// permanently, its sessions are fenced one by one, so only a session at
// fault is refused; any other failure is every session's of that batch.
// Every statement carries an explicit timestamp, so retrying a fence, alone
// or in another group, is idempotent.
//
// The caller bounds the group: Cassandra warns about unlogged batches
// spanning more than unlogged_batch_across_partitions_warn_threshold
// partitions (10) or larger than batch_size_warn_threshold (5 KiB), and
// refuses them above batch_size_fail_threshold (50 KiB).
func (st *Store) FenceSessions(ctx context.Context, fs []Fencing, errs []error) {
	valid := make([]int, 0, len(fs))
	for i := range fs {
		if err := st.checkFence(&fs[i]); err != nil {
			errs[i] = err
			continue
		}
		valid = append(valid, i)
	}
	if len(valid) == 0 {
		return
	}
	groups := st.replicaGroups(valid, func(i int) string { return fs[i].Session })
	eachGroup(groups, func(idx []int) { st.fenceGroup(ctx, fs, idx, errs) })
}

// fenceGroup fences fs[idx...] in one unlogged batch.
func (st *Store) fenceGroup(ctx context.Context, fs []Fencing, idx []int, errs []error) {
	if len(idx) == 1 {
		errs[idx[0]] = st.fence(ctx, &fs[idx[0]])
		return
	}
	b := st.s.Batch(gocql.UnloggedBatch)
	for _, i := range idx {
		b.Entries = st.fenceEntries(b.Entries, &fs[i])
	}
	err := b.SpeculativeExecutionPolicy(st.hedged()).ExecContext(ctx)
	if err == nil {
		for _, i := range idx {
			st.forget(fs[i].Session) // the tombstone shadows its deletes (rebase.go)
		}
		return
	}
	if isPermanent(err) {
		for _, i := range idx {
			errs[i] = st.fence(ctx, &fs[i])
		}
		return
	}
	for _, i := range idx {
		errs[i] = wrap("fence", fs[i].Session, err)
	}
}

// fence writes one checked fence as a single-partition batch. A fence too
// large for one (over fenceChunkBytes, or more statements than a batch
// holds) restores its items in several batches first and writes its
// tombstone with the last: the tombstone never lands before every item is
// restored above it, so a fence cut short loses nothing (the adoption fails
// and is tried again), and a complete one shadows every older write as a
// single batch would.
func (st *Store) fence(ctx context.Context, f *Fencing) error {
	base := EpochBase(f.Epoch)
	if err := st.writeAbove(ctx, "fence", f.Session, base, base+1, f.Items, 0); err != nil {
		return err
	}
	st.forget(f.Session) // the tombstone shadows its deletes (rebase.go)
	return nil
}

// writeAbove writes items at itemTS above a partition tombstone at tombTS,
// in batches of at most fenceChunkBytes of keys and values and
// fenceChunkItems items, the tombstone with the last: it never lands before
// every item is written above it. The batches are cut from the end, so the
// last holds as many of the last items as fit, and always the last keep:
// a rebase puts a write's changes last (rebase.go), and they land with the
// tombstone, all at once, as the write would have alone (the buffer sized
// it for one batch, HOLDOVER_MAX_BATCH_BYTES, which may exceed
// fenceChunkBytes). A fence and a session written whole both write so.
func (st *Store) writeAbove(ctx context.Context, op, session string, tombTS, itemTS int64, items []Item, keep int) error {
	starts := chunkStarts(items, keep)
	for c, from := range starts {
		to := len(items)
		if c+1 < len(starts) {
			to = starts[c+1]
		}
		last := to == len(items)
		b := st.s.Batch(gocql.UnloggedBatch)
		b.Entries = make([]gocql.BatchEntry, 0, to-from+1)
		if last {
			b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: st.stmts.deleteSession, Args: []any{tombTS, session}, Idempotent: true})
		}
		b.Entries = st.appendItems(b.Entries, session, itemTS, items[from:to])
		if err := st.exec(ctx, op, session, b); err != nil {
			return err
		}
	}
	return nil
}

// chunkStarts cuts items into writeAbove's batches from the end, each as
// full as fenceChunkItems and fenceChunkBytes allow (and at least one item;
// the last batch at least the last keep, whatever their size), and returns
// where each begins, in order: one batch, beginning at 0, for no items at
// all.
func chunkStarts(items []Item, keep int) []int {
	var starts []int
	end := len(items)
	for {
		n, size := 0, 0
		for n < end && n < fenceChunkItems+keep {
			it := &items[end-1-n]
			if n >= keep && (n >= fenceChunkItems || (n > 0 && size+len(it.Key)+len(it.Value) > fenceChunkBytes)) {
				break
			}
			size += len(it.Key) + len(it.Value)
			n++
		}
		keep = 0
		end -= n
		starts = append(starts, end)
		if end == 0 {
			break
		}
	}
	slices.Reverse(starts)
	return starts
}

// fenceChunkBytes bounds the keys and values of one batch of a fence, well
// under Cassandra's largest mutation (half its commit log segment, 16 MiB
// by default) and the native protocol's largest message.
const fenceChunkBytes = 4 << 20

// fenceChunkItems bounds the items of one batch of a fence, well under the
// 65,535 statements a batch holds: Cassandra applies a batch as one
// mutation within its write_request_timeout (2 s by default), and on a busy
// node a mutation of 65,535 rows timed out, every time the adoption of such
// a session was tried (TestTooManyStatementsIsPermanentAndAFenceSplits, two
// runs of three while the residency suite ran beside it). The chunks cost
// nothing in safety: the tombstone goes with the last.
const fenceChunkItems = 8192

// checkFence refuses a fence whose session ID is outside the limits or whose
// epoch no timestamp can carry. Its items are not checked: they are what the
// store holds, restored as they are even if the limits have shrunk since.
func (st *Store) checkFence(f *Fencing) error {
	if err := st.opts.Limits.CheckSession(f.Session); err != nil {
		return err
	}
	if f.Epoch == 0 || f.Epoch > MaxEpoch {
		return wrap("fence", f.Session, permanent(fmt.Errorf("epoch %d outside 1..%d", f.Epoch, uint64(MaxEpoch))))
	}
	return nil
}

// fenceEntries appends the statements of f to entries: the partition
// tombstone at EpochBase(f.Epoch), then the items just above it.
func (st *Store) fenceEntries(entries []gocql.BatchEntry, f *Fencing) []gocql.BatchEntry {
	base := EpochBase(f.Epoch)
	entries = append(entries, gocql.BatchEntry{Stmt: st.stmts.deleteSession, Args: []any{base, f.Session}, Idempotent: true})
	return st.appendItems(entries, f.Session, base+1, f.Items)
}
