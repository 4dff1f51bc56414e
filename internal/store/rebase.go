package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
)

// Deleting an item writes a row tombstone, which Cassandra keeps for the
// table's gc_grace_seconds (10 days by default) and until a compaction
// purges it. A read scans a partition's tombstones with its rows, and
// Cassandra fails a read that scans more than tombstone_failure_threshold
// (100,000 by default) of them (READ_TOO_MANY_TOMBSTONES). A session that
// deleted that many keys within gc_grace could then never be read again:
// no adoption could restore it, and a failover would lose it.
//
// So the store counts the deletes it writes to each session's partition and,
// once they reach Options.RebaseDeletes, writes the session whole instead of
// its snapshot: the persisted state, read back, with the snapshot's changes
// applied, above a partition tombstone at the snapshot's own timestamp.
// The partition tombstone shadows every earlier row tombstone, and a read
// skips what it shadows (as the adoption's fence, which does the same at an
// epoch's base, has always relied on). The count is per owner, in memory,
// and starts afresh only where a partition tombstone was written: an End, a
// session written whole, a fence (an adoption's, or a fresh start's). A new
// epoch alone does not: a recovery moves its sessions to the next epoch by
// a compare-and-set and fences nothing, and the count used to start afresh
// there, so a session that deleted just under RebaseDeletes items between
// recoveries was never written whole and, after a dozen, could no longer be
// read. A released session's previous owner kept its own count under the
// same bound, so a partition holds at most a small multiple of
// RebaseDeletes unshadowed tombstones.

// DefaultRebaseDeletes is Options.RebaseDeletes' default: a tenth of
// Cassandra's default tombstone_failure_threshold, and ten times its
// tombstone_warn_threshold.
const DefaultRebaseDeletes = 10000

// maxDeleteCounts bounds the sessions whose deletes are counted (sessions
// lost to an adoption keep theirs, unknown to the store); past it the half
// with the fewest deletes are forgotten. They used to be forgotten all at
// once: on a node with more sessions deleting items than the bound, every
// count started afresh each time the map filled again, and a session that
// deleted fewer than RebaseDeletes items between two of those was never
// written whole, whatever it deleted in all.
const maxDeleteCounts = 200000

// deleteCounts counts the deletes written to sessions' partitions since
// each was last written whole.
type deleteCounts struct {
	mu sync.Mutex
	m  map[string]deleteCount
}

type deleteCount struct {
	n int
}

func deletesOf(w *Write) int {
	n := 0
	for i := range w.Items {
		if w.Items[i].Delete {
			n++
		}
	}
	return n
}

// rebaseDue reports whether w should be written whole: it deletes items and
// would bring its session's count to RebaseDeletes, and it is a snapshot's
// last part (a later part writes at the same timestamp as the rewrite).
func (st *Store) rebaseDue(w *Write) bool {
	if w.Ended || w.More || st.opts.RebaseDeletes < 0 {
		return false
	}
	d := deletesOf(w)
	if d == 0 {
		return false
	}
	st.deletes.mu.Lock()
	c := st.deletes.m[w.Session]
	st.deletes.mu.Unlock()
	return c.n+d >= st.opts.RebaseDeletes
}

// counted records that w was written: its deletes add to its session's
// count, which starts afresh when w wrote a partition tombstone (an End). A
// write with neither deletes nor an End changes nothing and takes no lock.
func (st *Store) counted(w *Write) {
	d := deletesOf(w)
	if d == 0 && !w.Ended {
		return
	}
	st.deletes.mu.Lock()
	defer st.deletes.mu.Unlock()
	c, ok := st.deletes.m[w.Session]
	if w.Ended {
		c = deleteCount{}
	}
	c.n += d
	switch {
	case c.n == 0:
		delete(st.deletes.m, w.Session)
		return
	case st.deletes.m == nil:
		st.deletes.m = map[string]deleteCount{}
	case !ok && len(st.deletes.m) >= maxDeleteCounts:
		st.deletes.shed()
	}
	st.deletes.m[w.Session] = c
}

// shed forgets the half of the counts with the fewest deletes, so a
// session near RebaseDeletes keeps its count. Lock held.
func (d *deleteCounts) shed() {
	type entry struct {
		session string
		n       int
	}
	all := make([]entry, 0, len(d.m))
	for s, c := range d.m {
		all = append(all, entry{s, c.n})
	}
	slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(a.n, b.n) })
	for _, c := range all[:len(all)/2] {
		delete(d.m, c.session)
	}
}

// forget drops session's count: it was written whole, or fenced.
func (st *Store) forget(session string) {
	st.deletes.mu.Lock()
	delete(st.deletes.m, session)
	st.deletes.mu.Unlock()
}

// rebase writes w's session whole: the persisted items with w's changes
// applied, at Timestamp(Epoch, Seq+1), above a partition tombstone at
// Timestamp(Epoch, Seq) (the End's place in a write, so nothing of w's
// session written before w survives but what this rewrites). The buffer
// never has two writes of a session in flight, so nothing of the session's
// lands between the read and this write but an older write still in
// flight, which the tombstone shadows as it would have been overwritten.
// The items go in chunks as a fence's do (writeAbove), the persisted ones
// first and w's changes last, in the chunk of the tombstone when they fit
// in one: a rebase that fails half-way has rewritten persisted items at
// their values and deleted nothing. When the state cannot be read, w is
// written as it is (a later write tries again).
func (st *Store) rebase(ctx context.Context, w *Write) error {
	persisted, err := st.ReadState(ctx, w.Session)
	if err != nil {
		st.logger.Warn("holdover: a session with many deleted items could not be read back to be written whole; writing its changes alone",
			"session", w.Session, "err", err)
		return st.writePlain(ctx, w)
	}
	items, puts := applyChanges(persisted, w.Items)
	endTS, itemTS, err := st.checkWrite(w)
	if err != nil {
		return err
	}
	if err := st.writeAbove(ctx, "write", w.Session, endTS, itemTS, items, puts); err != nil {
		return err
	}
	st.forget(w.Session)
	st.logger.Info("holdover: session written whole to shed the tombstones of its deleted items",
		"session", w.Session, "items", len(items), "rebase_deletes", st.opts.RebaseDeletes)
	return nil
}

// applyChanges returns persisted (in key order) with changes applied: puts
// replace or add, deletes remove; the persisted items left come first, then
// the puts, last of them. Neither slice is modified.
func applyChanges(persisted, changes []Item) (items []Item, puts int) {
	byKey := make(map[string]int, len(changes))
	for i := range changes {
		byKey[changes[i].Key] = i // the last change of a key wins
	}
	out := make([]Item, 0, len(persisted)+len(changes))
	for _, it := range persisted {
		if _, ok := byKey[it.Key]; !ok {
			out = append(out, it)
		}
	}
	kept := len(out)
	for i := range changes {
		if byKey[changes[i].Key] == i && !changes[i].Delete {
			out = append(out, Item{Key: changes[i].Key, Value: changes[i].Value})
		}
	}
	return out, len(out) - kept
}

func (o Options) checkRebase() error {
	if o.RebaseDeletes < -1 {
		return fmt.Errorf("RebaseDeletes %d: want a positive count, 0 for the default (%d) or -1 to never write a session whole", o.RebaseDeletes, DefaultRebaseDeletes)
	}
	return nil
}
