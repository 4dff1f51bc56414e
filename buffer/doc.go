// Package buffer is the write-behind buffer between a node's in-memory database and
// the store: it coalesces committed changes per (session, key) for a short delay and
// hands whole-session snapshots to a flush function, which writes each as one
// single-partition batch. It does no I/O itself and imports nothing from the store.
//
// It is a building block: hosts use package adapter, which feeds it from Commit, writes
// its snapshots to Cassandra and expresses its types and errors in its own. Import
// buffer only to build another façade or another store.
//
// # Commit path
//
// Commit is called from the host's commit hook. It never does I/O, never waits for a
// flush and starts no goroutine; updating a key that is already dirty with a value of
// the same size allocates nothing. A transaction applies whole or not at all. Each
// (session, key) keeps one slot holding its latest change, so memory is bounded by the
// number of distinct dirty keys, not by the commit rate: put after put keeps the
// latest value, delete after put is a delete, put after delete is a put, and End
// supersedes every pending item of the session (changes after it are written after the
// partition delete).
//
// # Durability window
//
// A change is written no later than Config.Delay (its family's Delay, see Families)
// after the first unflushed change of its session (size limits and cap pressure start
// flushes earlier), given a free flush slot (Config.Concurrency) and a working store.
// A change committed less than that before a crash is lost; Stats.OldestPendingAge
// measures the live window, Stats.Families[i].OldestPendingAge each family's. Flush
// blocks until everything committed before it is durable; Close drains with a
// deadline and reports exactly which sessions it could not write.
//
// # Families
//
// Config.Families names classes of sessions by a prefix of their ID (the longest
// matching prefix wins; sessions matching none form the default family, which follows
// the Config's own fields). Each family has its own Delay, MaxSessionBytes and
// MaxWindow, so registrations can be written within 10ms while presence waits 5s in
// the same buffer. A session's family is decided when the buffer starts holding it,
// where CheckSession runs, and kept until it is written: the fast path of Commit
// matches no prefix. Each family is scheduled on its own (a 10ms session never waits
// behind a 5s one), has its own durability window and overload state (one family
// refusing with ErrOverloaded leaves the others accepting), and may bound its
// sessions: over its MaxSessionBytes a Commit is refused with ErrSessionTooLarge,
// applying nothing. Stats.Families and FlushEvent.Family report per family.
//
// # Snapshots and Seq
//
// A snapshot holds the latest pending change of every dirty key of one session,
// sorted by key. Two snapshots of one session are never in flight at once; changes
// committed during a flush go to the next one. Every snapshot carries Seq, the source
// of the store's write timestamps: a hybrid logical clock, max(units(now), last+2),
// counting SeqUnit ticks since SeqOriginUnix and strictly increasing per session across
// flushes and retries. The store writes an Ended snapshot's partition delete at Seq and
// its items at Seq+1, and builds timestamps as ownerEpoch<<SeqBits | Seq, so a newer
// owner's writes outrank an older owner's whatever the clocks say. Seq stays below
// 1<<SeqBits (until about 2080); a snapshot that would exceed it is dropped with
// ErrSeqExhausted.
//
// # Oversized sessions
//
// A snapshot larger than Config.MaxBatchBytes, or of more than MaxPartItems items,
// is split, in key order, into parts
// written one after the other with the same Seq. Atomicity then holds per part only:
// a crash between parts leaves the session with some parts of that state written and
// others not. A permanent error in one part drops the parts after it unwritten (each
// reported with an error wrapping ErrEarlierPartFailed), so no later part lands
// without the failed one; an End in a dropped part 1 is dropped with it. Splits are
// counted in Stats.Splits.
//
// # Errors
//
// An error from the flush function is permanent when IsPermanent reports so (wrap it
// with Permanent); the snapshot (or part, with the parts after it) is then dropped,
// reported to Config.OnDrop and counted, while newer commits of the session and all
// other sessions carry on.
// Every other error is transient: the session is retried after a capped exponential
// backoff with jitter, from a snapshot rebuilt from its latest state (the failed items
// go back under any newer changes of the same keys) with a new, higher Seq. Retrying
// is therefore idempotent, and an older value can never overwrite a newer one.
//
// # Backpressure
//
// Config.MaxPendingBytes caps what the buffer holds unwritten, including snapshots in
// flight or in backoff, so memory stays bounded while the store is down. A Commit or
// End that would cross it returns ErrBufferFull, applies nothing and is counted in
// Stats.Refusals; a commit that does not grow the buffer is always accepted. Above half
// the cap every dirty session is flushed at once. Config.MaxWindow bounds time as the
// cap bounds memory, per family: while a change committed now to a family would likely
// stay unwritten longer than the family's MaxWindow (the age of the family's oldest
// unwritten change, at least its Delay, plus the longest recent FlushFunc call of its
// sessions, or the longest under way so far), Commit and End of its sessions return ErrOverloaded, apply nothing and
// count it in Stats.Overloads, until the prediction is back under the Delay plus three
// quarters of the margin the bound leaves above it.
// The host decides what a refusal means for its transaction; the buffer never drops
// committed state silently.
//
// # Ownership
//
// Pause stops new flushes (a node whose lease lapsed must not write); Resume restarts
// them. Discard drops the unwritten state of sessions this node no longer owns. Close
// honours Pause.
package buffer
