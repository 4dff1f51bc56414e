package residency

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config configures a Manager.
type Config struct {
	// NodeID is this node's stable identity. Required.
	NodeID string
	// LeaseTTL is how long a lease lives without renewal: peers may adopt this
	// node's sessions LeaseTTL after its last renewal reached Cassandra, and
	// no later (the node itself stops acting as their owner MaxClockSkew
	// sooner). It is the failover time's ceiling, less the survivor's own
	// work. Default 10s (DefaultLeaseTTL), range 1s..10m.
	LeaseTTL time.Duration
	// LeaseRenew is the renewal period. Default LeaseTTL/3; at most LeaseTTL/2.
	// A renewal that does not answer at once is backed by further attempts
	// (one every LeaseRenew/3) until one succeeds or the lease runs out: the
	// node fences only when its lease has really expired.
	LeaseRenew time.Duration
	// MaxClockSkew bounds how far apart the clocks of the nodes and of
	// Cassandra may be. A node stops acting as owner LeaseTTL - MaxClockSkew
	// after its last successful renewal started (measured on its monotonic
	// clock), and writes that as the lease's life; peers treat its lease as
	// live until that life + MaxClockSkew after Cassandra stamped the renewal
	// (on their clocks), that is LeaseTTL, so no peer adopts a session while
	// its owner still acts and none waits longer than LeaseTTL. The skew
	// comes out of the owner's side: the larger it is, the less a renewal may
	// lag before the node fences. Default 100ms (clocks kept by NTP), range
	// 1ms..LeaseTTL/4.
	MaxClockSkew time.Duration
	// OwnershipTTL is the TTL of ownership rows and index entries: a session
	// nobody adopts vanishes after it. Default 7 days (DefaultOwnershipTTL).
	OwnershipTTL time.Duration
	// OwnershipTTLOf, when set, gives a session a TTL of its own (its
	// family's) in place of OwnershipTTL where it returns non-zero: for its
	// ownership row, its index entry and its items' renewals. RefreshEvery
	// must then suit the shortest TTL it returns.
	OwnershipTTLOf func(session string) time.Duration
	// EndedTTL is how long the row of an ended session is kept, marked ended.
	// A session started afresh with the same ID within it ranks above the
	// End's tombstone; it must cover the time Cassandra keeps that tombstone,
	// the state table's gc_grace_seconds. Default 240h (10 days, Cassandra's
	// default gc_grace_seconds), at least 1s.
	EndedTTL time.Duration
	// RefreshEvery is how often the sessions this node owns are checked for
	// expiry: a session owned for over half of OwnershipTTL gets its ownership
	// row, its index entry and its items that have lost a quarter of the TTL
	// renewed, so a resident session never loses items it has not changed
	// lately. Default OwnershipTTL/8, between 1s and 1h.
	RefreshEvery time.Duration
	// NegativeCacheTTL is how long an ID confirmed absent answers ErrNotFound
	// without a query. 0 (the zero value) disables the cache; the adapter
	// passes DefaultNegativeCacheTTL unless told otherwise.
	NegativeCacheTTL time.Duration
	// NegativeCacheSize bounds the negative cache in entries. Default 100000
	// (DefaultNegativeCacheSize).
	NegativeCacheSize int
	// LeaseCacheTTL is how long a peer's live lease is reused before it is
	// read again. A lease found expired is never reused: the next adoption
	// reads it afresh. Default LeaseRenew/2.
	LeaseCacheTTL time.Duration
	// MaxConcurrentCreates bounds the lightweight transactions recording
	// brand-new sessions (EnsureOwned, Prepare) in flight at once. A burst of
	// new sessions beyond what Paxos absorbs only queues in Cassandra, where
	// it delays this node's lease renewals until the node fences itself.
	// Default 64, range 1..4096.
	MaxConcurrentCreates int
	// CreationBudget is how long a new session may wait for its ownership
	// record before its first write (the window bound less the flush delay,
	// less room for the write). While every creation slot is taken and the
	// queue ahead, at the recent creation latency, would take longer than
	// this, AdmitNew refuses sessions this node does not own. 0: never.
	CreationBudget time.Duration
	// AdmissionOf, when set, gives a session a creation budget and an admit
	// lead of its own (the adapter's: its family's budget, and no lead) in
	// place of CreationBudget and AdmitLead where it returns non-zero. The
	// queue a session is judged against is every family's (the creations
	// share the slots): the creations started plus, for each lead, the
	// sessions admitted within it.
	AdmissionOf func(session string) (budget, lead time.Duration)
	// AdmitLead is how long a session admitted now waits before its
	// creation starts (a host whose flushes record new sessions passes its
	// flush delay; the adapter passes 0: it starts each recording when it
	// accepts the session's first changes, Prepare). AdmitNew counts the new
	// sessions it admitted within the last AdmitLead (a session's own, from
	// AdmissionOf) as queued for creation, so a burst of new sessions is
	// metered as it arrives, not only once its creations have taken every
	// slot. 0: only creations already started count.
	AdmitLead time.Duration
	// OnFenced is called (from the lease goroutine) when this node self-fences,
	// with the sessions it owned and those it had not recorded yet (new
	// sessions whose first write was still pending: their unwritten changes
	// are discarded, since peers may have started them afresh meanwhile): the
	// host must stop serving them (never end them: a fence is not an end).
	OnFenced func(sessions []string)
	// OnRecovered is called when renewals succeed again after a fence, with the
	// sessions lost meanwhile (adopted by a peer, or new and never recorded);
	// every other fenced session is still this node's, and Adopt answers
	// ErrAlreadyOwned for it.
	OnRecovered func(lost []string)
	// Flusher is paused while the node is fenced (the adapter passes its buffer).
	Flusher Pauser
	// Logger receives lease and adoption events. Default slog.Default().
	Logger *slog.Logger
}

// Pauser stops and restarts flushing.
type Pauser interface {
	Pause()
	Resume()
	Discard(sessions ...string) int
	// PendingSessions lists the sessions with unflushed state.
	PendingSessions() []string
}

// Defaults of Config. They are also the defaults of the adapter's HOLDOVER_*
// variables that set these fields (its configuration table refers to them),
// so a default is written once.
const (
	DefaultLeaseTTL             = 10 * time.Second
	DefaultMaxConcurrentCreates = 64
	DefaultMaxClockSkew         = 100 * time.Millisecond
	DefaultOwnershipTTL         = 7 * 24 * time.Hour
	DefaultEndedTTL             = 240 * time.Hour
	DefaultNegativeCacheSize    = 100000
	// DefaultNegativeCacheTTL is the negative cache's TTL in the adapter
	// (HOLDOVER_NEGATIVE_CACHE_TTL). A Manager has no cache unless
	// Config.NegativeCacheTTL is set.
	DefaultNegativeCacheTTL = 2 * time.Second
	// DefaultTakeoverRate is TakeoverOptions.Rate when it is 0, in
	// adoptions started per second.
	DefaultTakeoverRate = 500
)

// hold is how long this node acts as owner after a renewal was sent, and the
// life it writes into its lease: LeaseTTL less MaxClockSkew, which peers add
// back when they judge the lease (store.Lease.Ends), so that they wait
// LeaseTTL at most. At least 3/4 of LeaseTTL (MaxClockSkew is at most a
// quarter of it).
func (c Config) hold() time.Duration { return c.LeaseTTL - c.MaxClockSkew }

func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("residency: NodeID is required"))
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.LeaseTTL < time.Second || c.LeaseTTL > 10*time.Minute {
		errs = append(errs, fmt.Errorf("residency: LeaseTTL %s must be between 1s and 10m", c.LeaseTTL))
	}
	if c.LeaseRenew == 0 {
		c.LeaseRenew = c.LeaseTTL / 3
	}
	if c.LeaseRenew <= 0 || c.LeaseRenew > c.LeaseTTL/2 {
		errs = append(errs, fmt.Errorf("residency: LeaseRenew %s must be above 0 and at most LeaseTTL/2 (%s)", c.LeaseRenew, c.LeaseTTL/2))
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = DefaultMaxClockSkew
	}
	if c.MaxClockSkew < time.Millisecond || c.MaxClockSkew > c.LeaseTTL/4 {
		errs = append(errs, fmt.Errorf("residency: MaxClockSkew %s must be between 1ms and LeaseTTL/4 (%s)", c.MaxClockSkew, c.LeaseTTL/4))
	}
	if c.OwnershipTTL == 0 {
		c.OwnershipTTL = DefaultOwnershipTTL
	}
	if c.OwnershipTTL < 0 {
		// Written as Cassandra's least TTL, 1s: every session expired a
		// second after its last write.
		errs = append(errs, fmt.Errorf("residency: OwnershipTTL %s must be above 0", c.OwnershipTTL))
	}
	if c.EndedTTL == 0 {
		c.EndedTTL = DefaultEndedTTL
	}
	if c.EndedTTL < time.Second {
		errs = append(errs, fmt.Errorf("residency: EndedTTL %s must be at least 1s", c.EndedTTL))
	}
	if c.RefreshEvery == 0 {
		c.RefreshEvery = min(max(c.OwnershipTTL/8, time.Second), time.Hour)
	}
	if c.RefreshEvery < 0 {
		errs = append(errs, fmt.Errorf("residency: RefreshEvery %s must be above 0", c.RefreshEvery))
	}
	if c.NegativeCacheSize == 0 {
		c.NegativeCacheSize = DefaultNegativeCacheSize
	}
	if c.LeaseCacheTTL == 0 {
		c.LeaseCacheTTL = c.LeaseRenew / 2
	}
	if c.MaxConcurrentCreates == 0 {
		c.MaxConcurrentCreates = DefaultMaxConcurrentCreates
	}
	if c.MaxConcurrentCreates < 1 || c.MaxConcurrentCreates > 4096 {
		errs = append(errs, fmt.Errorf("residency: MaxConcurrentCreates %d must be between 1 and 4096", c.MaxConcurrentCreates))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, errors.Join(errs...)
}
