package buffer

import (
	"errors"
	"fmt"
	"time"
)

// Config tunes a Buffer. The zero value of every field selects its default, so the
// zero Config is valid.
type Config struct {
	// Delay is the longest a committed change waits before its flush starts, counted
	// from the first unflushed change of its session, so a hot session cannot starve.
	// Size limits and cap pressure may start a flush earlier, and the scheduler may
	// start one up to min(Delay/16, 1ms) early to batch its wake-ups.
	// Default 100ms; range 1ms to 1h.
	Delay time.Duration

	// MaxPendingBytes caps the bytes the buffer holds and has not yet written: keys plus
	// values plus an estimated overhead per item and per session, including snapshots
	// in flight or waiting to be retried. A Commit or End that would exceed it returns
	// ErrBufferFull and is not applied; one that does not grow the buffer is always
	// accepted. Above half the cap every dirty session is flushed without waiting for
	// Delay. Default 256 MiB; range 64 KiB to 1 TiB.
	MaxPendingBytes int64

	// MaxWindow bounds the durability window: while the oldest unwritten change in
	// the buffer (in flight included) plus the longest FlushFunc call of about the
	// last window (MaxWindow, between 100 ms and 1 s; or as long as the longest call
	// under way has run, if that is longer) exceeds it, Commit and End refuse with ErrOverloaded instead of
	// accepting changes they would likely leave unwritten longer than that. It
	// complements MaxPendingBytes (which bounds memory, not time): while the store
	// is down the buffer refuses within MaxWindow instead of filling up to the cap.
	// 0 (the default) disables the bound; otherwise it must exceed Delay, and at
	// most 24h.
	MaxWindow time.Duration

	// OnOverload, when set, is called by the watchdog when Commit and End start
	// refusing with ErrOverloaded (on) and when they stop, with the age of the
	// oldest unwritten change and the longest recent FlushFunc call then. With
	// Families, each family starts and stops refusing on its own and OnOverload
	// is called for each such change, so calls for different families interleave:
	// OnFamilyOverload names the family. It must not block.
	OnOverload func(on bool, oldest, flight time.Duration)

	// OnFamilyOverload, when set, is called for the same changes as OnOverload,
	// with the name of the family that started or stopped refusing ("" for the
	// default family) and that family's figures. It must not block.
	OnFamilyOverload func(family string, on bool, oldest, flight time.Duration)

	// Families gives classes of sessions, matched by a prefix of their ID, their
	// own Delay, MaxSessionBytes (then also a hard bound) and MaxWindow; sessions
	// matching none follow the fields above. At most MaxFamilies; see Family.
	// Default none.
	Families []Family

	// CheckSession and CheckChange, when set, validate input against the caller's own
	// limits (the store's column types and sizes) without taxing the fast path: Commit
	// and End call CheckSession when the buffer holds nothing of the session, and Commit
	// calls CheckChange for each change it applies outside the fast path (a new key, a
	// delete, a value of another size). A same-sized value for a dirty key was checked
	// when the key entered. An error refuses the whole call; a change's is wrapped with
	// its index ("change 2: ..."). They run under a shard lock: they must be quick and
	// must not call the Buffer.
	CheckSession func(session string) error
	CheckChange  func(key string, value []byte, delete bool) error

	// MaxSessionItems flushes a session early once it has this many dirty items.
	// Default 1024; range 1 to 1<<20.
	MaxSessionItems int

	// MaxSessionBytes flushes a session early once its dirty items count this many
	// bytes. Default 1 MiB; range 1 KiB to MaxPendingBytes.
	MaxSessionBytes int64

	// MaxBatchBytes splits a snapshot larger than this into parts of at most this many
	// bytes (an item larger than it forms a part of its own), and of at most
	// MaxPartItems items (a Cassandra batch holds at most 65,535 statements). Each part is one call of
	// the FlushFunc with the same Seq, in key order, one after the other. Atomicity holds
	// per part only; splits are counted in Stats.Splits. Default 4 MiB; range 1 KiB to
	// 1 GiB.
	MaxBatchBytes int64

	// Concurrency is how many FlushFunc calls (for different sessions) may run at once.
	// Default 128 (enough requests in flight to keep a networked store busy; workers
	// start only for sessions ready to flush); range 1 to 4096.
	Concurrency int

	// GroupFlush, if set, writes several small snapshots of different sessions in one
	// call. A worker takes up to GroupMax of the sessions ready at that moment (a lone
	// ready session goes alone); those with one part of at most GroupBytes
	// are handed to GroupFlush together (in calls totalling at most GroupBytes), the
	// rest go through the FlushFunc as usual. Each snapshot keeps its own Seq and its
	// own outcome: GroupFlush reports an error per snapshot, with the FlushFunc's
	// meaning (nil, transient, or permanent), and each session is retried, dropped or
	// released on its own. A group counts as one call against Concurrency.
	GroupFlush GroupFlushFunc

	// GroupMax is the most sessions one GroupFlush call carries. Default 8; range 1
	// (no grouping) to 256.
	GroupMax int

	// GroupBytes bounds a GroupFlush call: a snapshot larger than it is never grouped,
	// and a group's snapshots total at most this many bytes (as counted against the
	// caps). Default 4 KiB; range 256 B to 1 MiB.
	GroupBytes int64

	// Prepared, if set, reports whether a session's write can start at once (false:
	// the flush must first prepare it, such as recording a new session's ownership,
	// which may take much longer than a write). A GroupFlush call lands all its
	// snapshots when it returns, so a worker sends the sessions that are not prepared
	// in groups of their own, snapshotted after the others' groups have landed: a
	// slow preparation never holds a prepared session in flight, nor the changes
	// committed to it meanwhile, which wait for its write to land. Nil: every
	// session is prepared.
	Prepared func(session string) bool

	// OnNew, if set, is called when a Commit has applied the changes of a session
	// the buffer held nothing of (one CheckSession admitted), after the shard's
	// lock is released, before Commit returns: the host can start preparing the
	// session's write (recording a new session's ownership) while the changes
	// wait for the flush delay. It is not called for End. It runs on the Commit
	// path, as often as sessions become dirty: it must be quick and must not call
	// the Buffer.
	OnNew func(session string)

	// RetryMin and RetryMax bound the capped exponential backoff, with jitter, between
	// attempts after a transient error: the n-th retry waits a random time between half
	// and all of min(RetryMin<<(n-1), RetryMax). Defaults 50ms and 5s; RetryMin ranges
	// from 1ms to RetryMax, RetryMax from RetryMin to 1h.
	RetryMin, RetryMax time.Duration

	// Clock is the source of time and timers. Default: the system clock.
	Clock Clock

	// OnDrop, if set, is called when a permanent error drops a snapshot (or one part of
	// a split snapshot), with the session, the error and the number of items lost. The
	// parts after a part that failed permanently are dropped unwritten, one call each,
	// with an error wrapping ErrEarlierPartFailed and the failed part's error. It is
	// called from a flush goroutine, never under a lock of the buffer and never on the
	// Commit path; it must not block for long.
	OnDrop func(session string, err error, items int)

	// OnFlush, if set, observes every completed FlushFunc call (for latency and size
	// metrics). Same calling rules as OnDrop.
	OnFlush func(FlushEvent)
}

// Defaults of the Config fields. They are also the defaults of the adapter's
// HOLDOVER_* variables that set these fields (its configuration table refers to
// them), so a default is written once.
const (
	DefaultDelay           = 100 * time.Millisecond
	DefaultMaxPendingBytes = 256 << 20
	DefaultMaxSessionItems = 1024
	DefaultMaxSessionBytes = 1 << 20
	DefaultMaxBatchBytes   = 4 << 20
	DefaultConcurrency     = 128
	DefaultGroupMax        = 8
	DefaultGroupBytes      = 4 << 10
	DefaultRetryMin        = 50 * time.Millisecond
	DefaultRetryMax        = 5 * time.Second
)

// DefaultConfig returns a Config with every field set to its default.
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

func (c Config) withDefaults() Config {
	if c.Delay == 0 {
		c.Delay = DefaultDelay
	}
	if c.MaxPendingBytes == 0 {
		c.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if c.MaxSessionItems == 0 {
		c.MaxSessionItems = DefaultMaxSessionItems
	}
	if c.MaxSessionBytes == 0 {
		c.MaxSessionBytes = min(DefaultMaxSessionBytes, c.MaxPendingBytes)
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.GroupMax == 0 {
		c.GroupMax = DefaultGroupMax
	}
	if c.GroupBytes == 0 {
		c.GroupBytes = DefaultGroupBytes
	}
	if c.RetryMax == 0 {
		c.RetryMax = max(DefaultRetryMax, c.RetryMin)
	}
	if c.RetryMin == 0 {
		c.RetryMin = min(DefaultRetryMin, c.RetryMax)
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	return c
}

// Validate reports every field out of range at once (joined with errors.Join); each
// error names the field and its bounds, and the family for a field of Families.
// Zero fields stand for their defaults. A default derived from another field
// (MaxSessionBytes from MaxPendingBytes, RetryMin and RetryMax from each
// other) is valid whenever that field is, so only fields the caller set are
// named: a RetryMin of 2h is RetryMin's error, not the default RetryMax's.
func (c Config) Validate() error {
	set := c
	c = c.withDefaults()
	var errs []error
	durRange := func(name string, v, lo, hi time.Duration) {
		if v < lo || v > hi {
			errs = append(errs, fmt.Errorf("buffer: Config.%s is %v; must be between %v and %v", name, v, lo, hi))
		}
	}
	intRange := func(name string, v, lo, hi int64) {
		if v < lo || v > hi {
			errs = append(errs, fmt.Errorf("buffer: Config.%s is %d; must be between %d and %d", name, v, lo, hi))
		}
	}
	durRange("Delay", c.Delay, time.Millisecond, time.Hour)
	if c.MaxWindow != 0 && (c.MaxWindow <= c.Delay || c.MaxWindow > 24*time.Hour) {
		errs = append(errs, fmt.Errorf("buffer: Config.MaxWindow is %v; must be 0 (off) or above Delay (%v) and at most 24h", c.MaxWindow, c.Delay))
	}
	intRange("MaxPendingBytes", c.MaxPendingBytes, 64<<10, 1<<40)
	intRange("MaxSessionItems", int64(c.MaxSessionItems), 1, 1<<20)
	if set.MaxSessionBytes != 0 {
		intRange("MaxSessionBytes", c.MaxSessionBytes, 1<<10, max(c.MaxPendingBytes, 1<<10))
	}
	intRange("MaxBatchBytes", c.MaxBatchBytes, 1<<10, 1<<30)
	intRange("Concurrency", int64(c.Concurrency), 1, 4096)
	intRange("GroupMax", int64(c.GroupMax), 1, 256)
	intRange("GroupBytes", c.GroupBytes, 256, 1<<20)
	if set.RetryMin != 0 {
		durRange("RetryMin", c.RetryMin, time.Millisecond, min(max(c.RetryMax, time.Millisecond), time.Hour))
	}
	if set.RetryMax != 0 {
		durRange("RetryMax", c.RetryMax, max(c.RetryMin, time.Millisecond), time.Hour)
	}
	errs = c.validateFamilies(errs)
	return errors.Join(errs...)
}
