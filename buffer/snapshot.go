package buffer

import (
	"context"
	"time"
)

// Input limits of Commit. They only keep the buffer's own encoding sound; the adapter
// enforces the store's lower limits.
const (
	// MaxKeyLen is the longest key Commit accepts: 64 KiB - 1, Cassandra's limit for a
	// clustering key.
	MaxKeyLen = 1<<16 - 1
	// MaxValueLen is the largest value Commit accepts: 1 GiB.
	MaxValueLen = 1 << 30
)

// Change is one change in a committed transaction.
type Change struct {
	// Key names the item inside its session. It must not be empty.
	Key string
	// Value is the item's new value. It is ignored when Delete is set. The buffer
	// copies it, so the caller may reuse the slice as soon as Commit returns.
	Value []byte
	// Delete removes the item instead of writing Value.
	Delete bool
}

// Item is one pending item of a Snapshot: the latest change of its key.
type Item struct {
	// Key names the item inside its session.
	Key string
	// Value is the item's latest value; nil when Delete is set or the value is empty.
	Value []byte
	// Delete tells the store to delete the item.
	Delete bool
}

// Snapshot is the latest pending state of one session, handed to the FlushFunc.
//
// The snapshot and the slices it holds belong to the buffer and are valid only until
// the FlushFunc returns: a FlushFunc must not retain or modify them.
type Snapshot struct {
	// Session is the session's ID.
	Session string
	// Ended reports that the session was ended (Buffer.End) since its last flush. The
	// store must delete the whole partition at timestamp Seq, then write Items at
	// Seq+1: every item in this snapshot was committed after the End. When a snapshot is
	// split, only part 1 carries Ended.
	Ended bool
	// Items holds the latest pending change of each dirty key, sorted by key. It may be
	// empty when Ended is set.
	Items []Item
	// Seq is the write-timestamp source: strictly increasing per session across all of
	// its flushes and retries. The buffer reserves Seq (for the partition delete) and
	// Seq+1 (for the items) for this snapshot; see SeqBits. All parts of a split
	// snapshot share one Seq.
	Seq uint64
	// Part is the 1-based index of this part and Parts the number of parts when the
	// session's pending state was larger than Config.MaxBatchBytes (Parts is 1
	// normally). Parts are flushed one after the other, never concurrently. Atomicity
	// holds per part only: a crash between parts leaves the session with some parts
	// of this snapshot written and others not. After a permanent error in one part the
	// later parts are not flushed: they are dropped (see Config.OnDrop).
	Part, Parts int
	// Oldest is the time of the first unflushed change in this snapshot: the start of
	// the data-loss window this flush closes.
	Oldest time.Time
	// Prep is set by the FlushFunc (or GroupFlush) to the time it spent before
	// writing that a later flush of the session will not spend again, such as
	// recording a new session's ownership. The window bound (Config.MaxWindow)
	// leaves it out of the flight time it predicts by: a burst of first flushes
	// does not make the node refuse changes to the sessions already written (the
	// caller bounds that time by other means).
	Prep time.Duration
}

// FlushFunc writes one snapshot (or one part of it) to durable storage.
//
// It must be idempotent: after a transient error the buffer calls it again, with a
// higher Seq and the session's latest state, which may repeat items already written.
// An error is permanent if IsPermanent reports so; the snapshot is then dropped and
// reported through Config.OnDrop. Any other error is transient and retried. The
// context is cancelled when Close gives up draining; the FlushFunc should return
// promptly then.
type FlushFunc func(ctx context.Context, s *Snapshot) error

// GroupFlushFunc writes several snapshots of different sessions at once (see
// Config.GroupFlush). It stores the outcome of group[i] in errs[i] (len(errs) ==
// len(group), all nil on entry), each with the meaning a FlushFunc's error has. The
// same rules hold as for a FlushFunc: idempotent, the snapshots are valid only until
// it returns, return promptly when ctx is cancelled.
type GroupFlushFunc func(ctx context.Context, group []*Snapshot, errs []error)

// FlushEvent describes one completed call of the FlushFunc, for Config.OnFlush.
type FlushEvent struct {
	// Session, Seq, Part, Parts and Ended are those of the Snapshot written.
	Session     string
	Seq         uint64
	Part, Parts int
	Ended       bool
	// Family is the Name of the session's family (Config.Families), "" for the
	// default family: a label for window and latency metrics per family.
	Family string
	// Items and Bytes measure the part written (Bytes as counted against the caps).
	Items int
	Bytes int64
	// Attempt counts the calls made for this session's unflushed state, from 1; it
	// resets after a success.
	Attempt int
	// Taken is when the snapshot was taken: changes committed before it are in this
	// write (or an earlier one), changes committed after it in a later one.
	Taken time.Time
	// Duration is how long the FlushFunc call took (the whole GroupFlush call for a
	// grouped snapshot).
	Duration time.Duration
	// Lag is the time from the snapshot's Oldest change to the end of the call: the
	// data-loss window this write closed.
	Lag time.Duration
	// Late is set when the write succeeded with Lag over its family's MaxWindow:
	// had the node died just before it landed, changes acknowledged for it would
	// have been lost beyond the bound (counted in Stats.LateWrites).
	Late bool
	// Err is the FlushFunc's error, nil on success.
	Err error
}
