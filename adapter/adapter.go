package adapter

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/holdover/holdover/buffer"
	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// Adapter persists one node's sessions and adopts other nodes' sessions. It
// is safe for concurrent use.
type Adapter struct {
	cfg    Config
	limits store.Limits
	store  *store.Store
	buf    *buffer.Buffer
	// sharedBuf buffers the shared families' sessions (nil without one):
	// their flushes write no ownership and are never fenced.
	sharedBuf *buffer.Buffer
	res       *residency.Manager
	tel       *telemetry
	log       *slog.Logger
	hooks     Hooks
	fams      *familyTable // nil without HOLDOVER_FAMILIES
	shared    *sharedViews // the shared families' state; nil without one
	closed    atomic.Bool
	// gate orders calls.Add against Close setting closed; calls counts the
	// Adopt, Peek and Takeover calls in progress, which Close lets finish
	// before it releases sessions and closes residency.
	gate  sync.RWMutex
	calls sync.WaitGroup
	late  lateLog
}

// lateLog rate-limits the warnings about writes that landed past their
// window bound (lateWrite).
type lateLog struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

// lateLogEvery is the least time between two warnings about late writes.
const lateLogEvery = 10 * time.Second

// lateWrite warns that a write landed past its window bound (FlushEvent.Late),
// at most once every lateLogEvery, with how many it did not report since.
func (a *Adapter) lateWrite(e buffer.FlushEvent) {
	now := time.Now()
	a.late.mu.Lock()
	if !a.late.last.IsZero() && now.Sub(a.late.last) < lateLogEvery {
		a.late.skipped++
		a.late.mu.Unlock()
		return
	}
	skipped := a.late.skipped
	a.late.last, a.late.skipped = now, 0
	a.late.mu.Unlock()
	a.log.Warn("holdover: a write landed past the window bound: changes it carried had been acknowledged longer than HOLDOVER_MAX_WINDOW before (counted in holdover.flush.late)",
		"session", e.Session, "family", e.Family, "oldest_change_age", e.Lag, "write_took", e.Duration,
		"waited_before_write", e.Lag-e.Duration, "attempt", e.Attempt, "not_logged_since_last", skipped)
}

// enter admits an Adopt, Peek or Takeover call; false once Close began.
// An admitted call must call a.calls.Done.
func (a *Adapter) enter() bool {
	a.gate.RLock()
	defer a.gate.RUnlock()
	if a.closed.Load() {
		return false
	}
	a.calls.Add(1)
	return true
}

// Hooks are the host's callbacks. Each is optional and called from the
// adapter's goroutines, never from Commit; none may block for long.
//
// A fence is not an end: on OnFenced and OnRecovered the host may drop its
// in-memory copies of sessions, but must never call End for them (End
// deletes the persisted state, which a peer may be adopting right now).
type Hooks struct {
	// OnFenced: this node could not renew its lease and stopped flushing;
	// LeaseValid reports false, and Adopt returns ErrFenced, until it
	// recovers. sessions lists every session it owned (and the new ones it
	// had not written yet, whose changes are discarded): peers may adopt
	// them meanwhile. Stop acknowledging changes to them: the simplest host
	// drops its in-memory copies here (without End) and refuses events while
	// LeaseValid is false.
	OnFenced func(sessions []string)
	// OnRecovered: the lease is renewed again. lost lists those of the fenced
	// sessions this node no longer owns (a peer adopted them, they ended or
	// expired, or they were new and never written); their pending changes
	// were discarded: drop them if the host still holds them (without End).
	// Every other fenced session is still this node's and its pending
	// changes are written now; a host that dropped its copy on OnFenced gets
	// ErrAlreadyOwned from Adopt at its next event, and reloads it (Flush,
	// then Peek).
	OnRecovered func(lost []string)
	// OnDropped: a permanent error dropped items of a session: a value
	// Cassandra refuses, a schema error, or (an *OwnedElsewhereError) another
	// node owns the session: two nodes created the same session ID and the
	// other recorded it first. In that last case drop the local copy
	// (without End: the session is the other node's) and forward its events.
	// With Stored set, Owner is this node: the host committed to a session
	// as new whose ID has state this node stored earlier (an earlier
	// incarnation, or this process before a fence); drop the local copy and
	// Adopt the session at its next event, which returns the stored state.
	OnDropped func(session string, items int, err error)
	// OnFlushed observes every completed flush (session, items, duration, the
	// data-loss window it closed, error), for hosts that keep their own
	// latency figures.
	OnFlushed func(FlushEvent)
	// OnSharedChange: a re-read of the shared family found changes other
	// nodes made (or expiries) since the last one; the node's own writes are
	// not reported. Called from the family's refresh goroutine, one call per
	// re-read that found any, changes sorted by session and key.
	OnSharedChange func(family string, changes []SharedChange)
}

// FlushEvent describes one completed write (or attempt) of one session's
// pending changes.
type FlushEvent struct {
	// Session is the session written.
	Session string
	// Ended is true when the write carried an End of the session.
	Ended bool
	// Part and Parts number the parts of a session larger than
	// HOLDOVER_MAX_BATCH_BYTES, written one after the other (1 of 1
	// normally).
	Part, Parts int
	// Items and Bytes measure what was written.
	Items int
	Bytes int64
	// Attempt counts the attempts at this session's pending changes, from 1;
	// it restarts after a success.
	Attempt int
	// Taken is when the changes were taken from the buffer: those committed
	// before it are in this write (or an earlier one).
	Taken time.Time
	// Duration is how long the write took.
	Duration time.Duration
	// Lag is the time from the oldest change written to the end of the
	// write: the data-loss window this write closed.
	Lag time.Duration
	// Late is set when the write succeeded with Lag over its window bound
	// (HOLDOVER_MAX_WINDOW, or its family's): see BufferStats.LateWrites.
	Late bool
	// Family is the session's family (HOLDOVER_FAMILIES); "" for none.
	Family string
	// Err is nil on success. Otherwise the write is retried (transient
	// errors) or dropped and reported to OnDropped (permanent ones).
	Err error
}

func flushEvent(e buffer.FlushEvent) FlushEvent {
	return FlushEvent{Session: e.Session, Ended: e.Ended, Part: e.Part, Parts: e.Parts, Items: e.Items,
		Bytes: e.Bytes, Attempt: e.Attempt, Taken: e.Taken, Duration: e.Duration, Lag: e.Lag, Late: e.Late, Family: e.Family, Err: translate(e.Err)}
}

// Option adds what the environment cannot say: callbacks, a logger,
// OpenTelemetry providers.
type Option func(*options)

type options struct {
	hooks  Hooks
	logger *slog.Logger
	meter  metric.MeterProvider
	tracer trace.TracerProvider
	clock  buffer.Clock // tests only: the buffer's clock
	// tests only: what residency talks to, in place of the store itself
	// (a wrapper that holds or fails chosen calls)
	residencyStore func(residency.Store) residency.Store
}

// residencyStoreOf is the store residency talks to: st, or what a test
// wrapped it in.
func (o *options) residencyStoreOf(st residency.Store) residency.Store {
	if o.residencyStore != nil {
		return o.residencyStore(st)
	}
	return st
}

// WithHooks sets the host's callbacks.
func WithHooks(h Hooks) Option { return func(o *options) { o.hooks = h } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMeterProvider sets the OpenTelemetry meter provider (default: the
// global one). The adapter never installs an SDK.
func WithMeterProvider(p metric.MeterProvider) Option { return func(o *options) { o.meter = p } }

// WithTracerProvider sets the OpenTelemetry tracer provider (default: the
// global one).
func WithTracerProvider(p trace.TracerProvider) Option { return func(o *options) { o.tracer = p } }

// OpenFromEnv reads the configuration from HOLDOVER_* environment variables
// (see Config) and opens an adapter with it.
func OpenFromEnv(ctx context.Context, opts ...Option) (*Adapter, error) {
	cfg, err := ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	return Open(ctx, cfg, opts...)
}

// Open validates cfg, connects to Cassandra (creating the schema unless
// HOLDOVER_CREATE_SCHEMA=false), takes this node's lease and starts flushing.
func Open(ctx context.Context, cfg Config, opts ...Option) (*Adapter, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	so, err := cfg.storeOptions()
	if err != nil {
		return nil, err
	}
	so.Logger = o.logger
	fams := newFamilyTable(cfg.Families)
	if fams != nil {
		so.TTLFor = fams.ttlOf
		so.SharedTable = fams.shared
	}
	st, err := store.Open(ctx, so)
	if err != nil {
		return nil, fmt.Errorf("holdover: open cassandra store: %w", translate(err))
	}
	a := &Adapter{cfg: cfg, limits: so.Limits, store: st, log: o.logger, hooks: o.hooks, fams: fams}
	a.tel = newTelemetry(o.meter, o.tracer)
	a.tel.setFamilies(cfg.Families)
	if fams != nil && fams.shared {
		// Shared families are read before the node takes part: a host
		// reads their state as soon as Open returns.
		a.shared = newSharedViews(fams)
		if err := a.loadShared(ctx); err != nil {
			st.Close()
			return nil, err
		}
		a.sharedBuf, err = buffer.New(buffer.Config{
			Delay:    cfg.FlushDelay,
			Families: cfg.bufferFamilies(true),
			// Shared state is small: its own cap, beside the node's.
			MaxPendingBytes: min(int64(cfg.MaxPendingBytes), sharedMaxPendingBytes),
			MaxBatchBytes:   int64(cfg.MaxBatchBytes),
			Concurrency:     sharedConcurrency,
			RetryMin:        cfg.RetryMin,
			RetryMax:        cfg.RetryMax,
			MaxWindow:       cfg.MaxWindowBound(),
			CheckSession:    a.checkSharedSession,
			CheckChange:     a.checkChange,
			OnDrop:          a.dropped,
			OnFlush:         a.flushed,
			Clock:           o.clock,
		}, a.flushShared)
		if err != nil {
			st.Close()
			return nil, translate(err)
		}
	}

	a.buf, err = buffer.New(buffer.Config{
		Delay:            cfg.FlushDelay,
		MaxPendingBytes:  int64(cfg.MaxPendingBytes),
		MaxSessionItems:  cfg.MaxSessionItems,
		MaxBatchBytes:    int64(cfg.MaxBatchBytes),
		Concurrency:      cfg.FlushConcurrency,
		GroupFlush:       a.flushGroup,
		GroupMax:         cfg.FlushGroupMax,
		GroupBytes:       int64(cfg.FlushGroupBytes),
		Prepared:         a.ownsSession,
		OnNew:            a.prepare,
		RetryMin:         cfg.RetryMin,
		RetryMax:         cfg.RetryMax,
		MaxWindow:        cfg.MaxWindowBound(),
		Families:         cfg.bufferFamilies(false),
		OnFamilyOverload: a.overload,
		CheckSession:     a.checkSession,
		CheckChange:      a.checkChange,
		OnDrop:           a.dropped,
		OnFlush:          a.flushed,
		Clock:            o.clock,
	}, a.flush)
	if err != nil {
		a.closeShared(ctx)
		st.Close()
		return nil, translate(err)
	}
	var ttlOf func(string) time.Duration
	if fams != nil {
		ttlOf = fams.ttlOf
	}
	negTTL := cfg.NegativeCacheTTL
	if cfg.NegativeCacheSize == 0 {
		negTTL = 0 // a size of 0 disables the cache (residency reads it as its default size)
	}
	a.res, err = residency.New(residency.Config{
		NodeID:               cfg.NodeID,
		LeaseTTL:             cfg.LeaseTTL,
		LeaseRenew:           cfg.LeaseRenewEvery(),
		MaxClockSkew:         cfg.MaxClockSkew,
		OwnershipTTL:         cfg.StateTTL,
		OwnershipTTLOf:       ttlOf,
		RefreshEvery:         min(max(cfg.shortestTTL()/8, time.Second), time.Hour),
		EndedTTL:             cfg.EndedTTL,
		NegativeCacheTTL:     negTTL,
		NegativeCacheSize:    cfg.NegativeCacheSize,
		MaxConcurrentCreates: cfg.ConcurrentCreates(),
		CreationBudget:       cfg.creationBudget(Family{}),
		AdmissionOf:          cfg.admissionOf(fams, a.buf.RecentFlight),
		AdmitLead:            0, // recordings start on admission: see prepare
		OnFenced:             o.hooks.OnFenced,
		OnRecovered:          o.hooks.OnRecovered,
		Flusher:              a.buf,
		Logger:               o.logger,
	}, o.residencyStoreOf(st))
	if err == nil {
		err = a.res.Start(ctx)
	}
	if err != nil {
		_, _ = a.buf.Close(ctx)
		a.closeShared(ctx)
		st.Close()
		return nil, fmt.Errorf("holdover: start node %q: %w", cfg.NodeID, translate(err))
	}
	if a.shared != nil {
		a.startSharedRefresh()
	}
	if err := a.tel.register(a); err != nil {
		a.log.Warn("holdover: metrics not registered", "err", err)
	}
	a.log.Info("holdover: adapter open", "node", cfg.NodeID, "keyspace", cfg.Keyspace, "flush_delay", cfg.FlushDelay)
	return a, nil
}

// NodeID is this node's identity (HOLDOVER_NODE_ID).
func (a *Adapter) NodeID() string { return a.cfg.NodeID }

// Config is the configuration the adapter runs with.
func (a *Adapter) Config() Config { return a.cfg }

func (a *Adapter) flushed(e buffer.FlushEvent) {
	a.tel.flushed(e)
	if e.Late {
		a.lateWrite(e)
	}
	if a.hooks.OnFlushed != nil {
		a.hooks.OnFlushed(flushEvent(e))
	}
}

func (a *Adapter) dropped(session string, err error, items int) {
	err = translate(err)
	a.log.Error("holdover: changes dropped after a permanent error", "session", session, "items", items, "err", err)
	if a.hooks.OnDropped != nil {
		a.hooks.OnDropped(session, items, err)
	}
}

// overload logs when commits start and stop being refused with ErrOverloaded.
func (a *Adapter) overload(family string, on bool, oldest, flight time.Duration) {
	window := a.cfg.MaxWindowBound()
	if f := a.fams.named(family); f != nil {
		window = a.cfg.familyWindow(*f)
	}
	if on {
		a.log.Warn("holdover: refusing commits: unwritten changes would outlive HOLDOVER_MAX_WINDOW",
			"family", family, "max_window", window, "oldest_unwritten", oldest, "longest_recent_flush", flight)
		return
	}
	a.log.Info("holdover: accepting commits again", "family", family, "oldest_unwritten", oldest, "longest_recent_flush", flight)
}
