package residency

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/holdover/holdover/internal/store"
)

// Store is what residency needs from Cassandra; *store.Store implements it.
type Store interface {
	ReadOwner(ctx context.Context, session string) (store.Owner, bool, error)
	// ReadOwnerSerial is ReadOwner at the serial consistency level: a Paxos
	// round that writes nothing (AdmitNew's probe of the store).
	ReadOwnerSerial(ctx context.Context, session string) (store.Owner, bool, error)
	CreateOwner(ctx context.Context, session, node string, ended uint64, ttl time.Duration) (bool, store.Owner, error)
	Claim(ctx context.Context, session string, prev store.Owner, node string, ttl time.Duration) (bool, store.Owner, error)
	Release(ctx context.Context, session, node string, epoch uint64, ttl time.Duration) (bool, error)
	EndOwner(ctx context.Context, session, node string, epoch uint64, ttl time.Duration) (bool, error)
	ReadState(ctx context.Context, session string) ([]store.Item, error)
	Fence(ctx context.Context, session string, epoch uint64, items []store.Item) error
	// ReadStates and FenceSessions are ReadState and Fence of several
	// sessions, each with its own outcome, in fewer requests (bulk takeover).
	ReadStates(ctx context.Context, sessions []string, items [][]store.Item, errs []error)
	FenceSessions(ctx context.Context, fs []store.Fencing, errs []error)
	RenewLease(ctx context.Context, node string, ttl, grace time.Duration, since time.Time, incarnation string) error
	TakeLease(ctx context.Context, node, incarnation string, prev store.Lease, found bool, ttl, grace time.Duration, since time.Time) (bool, store.Lease, error)
	CheckLease(ctx context.Context, node, incarnation string, ttl, grace time.Duration, since time.Time) (bool, store.Lease, error)
	DropLease(ctx context.Context, node, incarnation string) error
	ReadLease(ctx context.Context, node string) (store.Lease, bool, error)
	IndexOwner(ctx context.Context, node, session string, epoch uint64, ttl time.Duration) error
	UnindexOwner(ctx context.Context, node, session string, epoch uint64) error
	MoveIndex(ctx context.Context, from, to string, moved []store.Owned, stale []string, ttl time.Duration) error
	OwnedBy(ctx context.Context, node string, fn func(store.Owned) bool) error
	RefreshState(ctx context.Context, session string, minRemaining time.Duration) (int, error)
	RefreshOwner(ctx context.Context, session, node string, epoch uint64, ttl time.Duration) (bool, error)
}

// Manager tracks which sessions this node owns and runs its lease. It is safe
// for concurrent use.
type Manager struct {
	cfg         Config
	store       Store
	incarnation string // this process's claim on the node ID's lease

	mu     sync.RWMutex
	owned  map[string]uint64 // session -> epoch this node owns it at
	fenced bool
	// ended: the epoch of the ended row of sessions this node ended lately,
	// so that starting one again takes one compare-and-set, not two.
	ended map[string]uint64

	creates  chan struct{} // a slot per ownership creation in flight
	creating atomic.Int64  // ownership creations in flight or waiting for a slot
	createNS atomic.Int64  // recent latency of an ownership creation (see createTook), ns
	// createMoved: when the creations last made progress (one ended, or
	// one began with none in flight), as elapsed ns.
	createMoved atomic.Int64
	admits      admitMeters // new sessions admitted lately, not yet creating
	window      *creationWindow
	// createSeen: a creation has ended; until then createNS holds the
	// latency of taking the lease, which the first creation replaces.
	createSeen atomic.Bool

	neg    *negativeCache
	leases leaseCache
	flight singleflight.Group
	// adopting holds the sessions an adoption is working on (inside
	// flight, its wait for a live owner's lease included): a takeover
	// joins those instead of claiming them, so it reads none of their
	// states ahead either.
	adopting sync.Map // session -> struct{}
	// preparing holds the recordings of new sessions under way (Prepare's
	// and EnsureOwned's); a fence clears it. Prepare's run under prepCtx,
	// which StopPreparing cancels before it waits for them (preparations);
	// prepStopped (under indexMu) starts no more.
	preparing    sync.Map // session -> *preparation
	prepCtx      context.Context
	prepCancel   context.CancelFunc
	preparations sync.WaitGroup
	prepStopped  bool
	// doubtful holds the sessions whose last recording failed after its
	// lightweight transaction was sent: it may have landed (a timeout
	// after Cassandra applied it), leaving a row that names this node while
	// this node does not hold the session (Unsettled). A recording that
	// settles the session (owned, or another node's) clears it; so does a
	// fence, which discards such sessions.
	doubtful sync.Map // session -> struct{}
	// endsInDoubt holds the sessions whose End record (Ended) is under way
	// or failed: it may have landed (a reply lost after Cassandra applied
	// it), leaving the row ended while this node still holds the session,
	// at the epoch it holds it at (EndInDoubt).
	endsInDoubt sync.Map // session -> uint64
	// releasing holds the sessions ReleaseAll gave up, at the epoch it
	// released them at: a recovery whose claim of one was on its way took
	// the row back, and releases it again at the epoch it claimed.
	releasing sync.Map // session -> uint64
	// leaseFlight shares one read of a peer's lease among the adoptions
	// that need it at once (sharedLease).
	leaseFlight singleflight.Group
	// waitReads and waitFences group the state reads and the fences of
	// adoptions that waited for a lease and woke together (waitadopt.go);
	// indexMoves groups the owner-index moves of those and of every other
	// adoption from a peer. bgCancel ends the first two at Close, which
	// waits for the moves (indexing).
	waitReads  *stateReader
	waitFences *fencer
	indexMoves *indexMover
	bg         context.Context
	bgCancel   context.CancelFunc
	// probing: AdmitNew's probe of the store is running.
	probing atomic.Bool

	indexMu     sync.Mutex     // orders indexing.Add against Close's Wait
	indexClosed bool           // under indexMu: Close waits for indexing; nothing more joins it
	indexing    sync.WaitGroup // owner-index updates running in the background

	// Lease times are measured on the monotonic clock, as durations since
	// started: a step of the wall clock can neither stretch nor cut a lease.
	started   time.Time
	wall      func() time.Time // the wall clock peers' leases are judged by (tests step it)
	lastRenew atomic.Int64     // nanos since started at the start of the last successful renewal
	since     atomic.Int64     // wall clock (Unix ns) when the current unbroken lease began: store.Lease.Since
	// recoveredLost holds the sessions found lost by recoveries that stopped
	// before the node could unfence, for OnRecovered; settled the sessions a
	// recovery already settled since the fence, true for those kept and
	// false for those lost. Lease goroutine only.
	recoveredLost []string
	settled       map[string]bool
	replaced      atomic.Bool // another process took this node ID's lease: fenced for good
	stats         counters

	stop chan struct{}
	// refreshCtx ends with Close: a refresh under way (refreshStateTimeout
	// may be long), or a recovery's lease check and claims, stop rather
	// than hold Close up.
	refreshCtx    context.Context
	refreshCancel context.CancelFunc
	// ending ends with StopAdopting (or Close): no more waits or takeovers.
	ending      context.Context
	endAdopts   context.CancelFunc
	kick        chan struct{} // renew now: a lapse was noticed outside the lease goroutine
	done        chan struct{}
	refreshDone chan struct{}
	closed      atomic.Bool
}

// New returns a Manager for cfg.NodeID. Call Start to take the lease.
func New(cfg Config, st Store) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	neg, err := newNegativeCache(cfg.NegativeCacheSize, cfg.NegativeCacheTTL)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	prepCtx, prepCancel := context.WithCancel(context.Background())
	ending, endAdopts := context.WithCancel(context.Background())
	refreshCtx, refreshCancel := context.WithCancel(context.Background())
	m := &Manager{
		refreshCtx:    refreshCtx,
		refreshCancel: refreshCancel,
		ending:        ending,
		endAdopts:     endAdopts,
		waitReads:     newStateReader(bg, st),
		waitFences:    newFencer(bg, st, burstRequestsInFlight),
		bg:            bg,
		bgCancel:      cancel,
		prepCtx:       prepCtx,
		prepCancel:    prepCancel,
		cfg:           cfg,
		store:         st,
		incarnation:   rand.Text()[:16],
		owned:         make(map[string]uint64),
		ended:         make(map[string]uint64),
		creates:       make(chan struct{}, cfg.MaxConcurrentCreates),
		window:        newCreationWindow(cfg.MaxConcurrentCreates),
		neg:           neg,
		leases:        leaseCache{ttl: cfg.LeaseCacheTTL, m: map[string]liveLease{}, expired: map[string]time.Time{}},
		started:       time.Now(),
		wall:          time.Now,
		settled:       map[string]bool{},
		stop:          make(chan struct{}),
		kick:          make(chan struct{}, 1),
		done:          make(chan struct{}),
		refreshDone:   make(chan struct{}),
	}
	m.indexMoves = newIndexMover(m)
	return m, nil
}

// NodeID is this node's identity.
func (m *Manager) NodeID() string { return m.cfg.NodeID }

// Start takes this node ID's lease for this process (an incarnation of the
// node) and starts renewing it every LeaseRenew until Close. While another
// process holds the node ID's lease and renews it, Start waits for that lease
// to expire (a restart after a crash waits at most LeaseTTL;
// after a graceful Close, not at all); if ctx ends first it returns a
// *NodeIDInUseError. Two live processes never share a node ID: the one that
// took the lease over from a paused process makes the paused one fence for
// good when it wakes (it then reports ErrReplaced).
func (m *Manager) Start(ctx context.Context) error {
	var seen store.Lease
	for {
		l, found, err := m.store.ReadLease(ctx, m.cfg.NodeID)
		if err != nil && ctx.Err() != nil && seen.Incarnation != "" {
			err = &NodeIDInUseError{Node: m.cfg.NodeID, Incarnation: seen.Incarnation, RenewedAt: seen.RenewedAt, Err: ctx.Err()}
		}
		if err != nil {
			return err
		}
		if found && l.Incarnation != m.incarnation && l.LiveAt(m.wall(), m.cfg.MaxClockSkew) {
			seen = l
			select {
			case <-ctx.Done():
				return &NodeIDInUseError{Node: m.cfg.NodeID, Incarnation: seen.Incarnation, RenewedAt: seen.RenewedAt, Err: ctx.Err()}
			case <-time.After(min(m.cfg.LeaseRenew, 100*time.Millisecond)):
			}
			continue
		}
		began := m.elapsed()
		m.since.Store(m.wall().UnixNano())
		took, _, err := m.store.TakeLease(ctx, m.cfg.NodeID, m.incarnation, l, found, m.cfg.hold(), m.cfg.MaxClockSkew, m.sinceTime())
		if err != nil {
			return err
		}
		// Taking the lease is a lightweight transaction, as a creation is:
		// its latency is AdmitNew's estimate until the first creation ends.
		if m.createNS.CompareAndSwap(0, max(int64(m.elapsed()-began), 1)) {
			m.window.seed(m.cfg.CreationBudget, time.Duration(m.createNS.Load()))
		}
		if took {
			m.lastRenew.Store(int64(began))
			m.stats.renewals.Add(1)
			break
		}
	}
	go m.renewLoop()
	go m.refreshLoop()
	return nil
}

// Epoch returns the epoch at which this node owns session, if it does.
// The flush path uses it to build write timestamps.
func (m *Manager) Epoch(session string) (uint64, bool) {
	m.mu.RLock()
	e, ok := m.owned[session]
	m.mu.RUnlock()
	return e, ok
}

// Replaced reports whether another process took over this node ID while
// this one was paused: it stays fenced for good and should close.
func (m *Manager) Replaced() bool { return m.replaced.Load() }

// Fenced reports whether this node has self-fenced (its lease lapsed).
func (m *Manager) Fenced() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.fenced
}

// EnsureOwned returns the epoch at which this node owns session, recording a
// brand-new session at epoch 1 (a lightweight transaction, once per session).
// When the session already belongs to another node it returns an
// *OwnedElsewhereError: the host created a session whose ID is taken, and must
// adopt it first. A recording of session under way (one Prepare started, or
// another EnsureOwned) is joined: its outcome is returned. Every recording of
// a session so goes through one entry of preparing: two at once would each
// find the other's record, and the loser would claim and fence the session
// over the winner's first write.
func (m *Manager) EnsureOwned(ctx context.Context, session string) (uint64, error) {
	if e, ok := m.Epoch(session); ok {
		return e, nil
	}
	p := &preparation{done: make(chan struct{})}
	if q, running := m.preparing.LoadOrStore(session, p); running {
		return q.(*preparation).wait(ctx)
	}
	e, err := m.ensureOwned(ctx, session, false)
	m.prepared(session, p, e, err)
	return e, err
}

// recorded notes how a recording of session whose lightweight transaction
// was sent ended: in doubt, unless its outcome says where the session stands
// (recorded as this node's, another node's, or discarded by a fence).
func (m *Manager) recorded(session string, err error, fences uint64) {
	if m.stats.fences.Load() != fences {
		// A recording that began before a fence: the fence cleared the
		// sessions' doubts and discarded its changes. Its outcome must not
		// clear (or set) the doubt of a recording begun since.
		return
	}
	var oe *OwnedElsewhereError
	if err == nil || errors.As(err, &oe) || errors.Is(err, ErrCreationLapsed) {
		m.doubtful.Delete(session)
		return
	}
	m.doubtful.Store(session, struct{}{})
}

// Unsettled reports whether a recording of session is under way (Preparing)
// or the last one failed without saying whether it landed. A flush that
// would skip a session it finds unowned (one ended before its first write)
// must record it instead (EnsureOwned), so that its End is recorded too: a
// row the recording left would otherwise name this node for good.
func (m *Manager) Unsettled(session string) bool {
	if m.Preparing(session) {
		return true
	}
	_, ok := m.doubtful.Load(session)
	return ok
}

// ensureOwned records session (EnsureOwned's work, outside preparing).
// counted: the caller has already counted it in creating (Prepare, so that
// AdmitNew sees it queued from the moment it was admitted).
func (m *Manager) ensureOwned(ctx context.Context, session string, counted bool) (_ uint64, rerr error) {
	uncount := func() {
		if counted {
			m.creating.Add(-1)
		}
	}
	if e, ok := m.Epoch(session); ok {
		uncount()
		return e, nil
	}
	// A fence from here on discarded this session's changes: counted
	// before the lease is checked, so one during the wait for a creation
	// slot is seen too.
	fences := m.stats.fences.Load()
	if !m.LeaseValid() {
		uncount()
		return 0, m.fencedErr()
	}
	requested := m.elapsed()
	if !counted && m.creating.Add(1) == 1 {
		m.createMoved.Store(int64(requested))
	}
	select {
	case m.creates <- struct{}{}:
	case <-ctx.Done():
		m.creating.Add(-1)
		return 0, ctx.Err()
	}
	if m.stats.fences.Load() != fences {
		<-m.creates
		m.creating.Add(-1)
		return 0, ErrCreationLapsed
	}
	began := time.Now()
	defer func() { m.recorded(session, rerr, fences) }()
	created, cur, err := m.store.CreateOwner(ctx, session, m.cfg.NodeID, m.takeEnded(session), m.ttl(session))
	m.createTook(time.Since(began))
	<-m.creates
	left := m.creating.Add(-1)
	if budget, _ := m.admission(session); budget > 0 {
		now := m.elapsed()
		m.window.ended(now, now-requested, budget, left+m.admits.pending(now))
	}
	if err != nil {
		return 0, err
	}
	if cur.Epoch != 0 && !cur.Ended {
		// The row exists, whoever's it is: an absence cached by an earlier
		// lookup is stale (Adopt and Peek would answer ErrNotFound for a
		// session this call may report owned elsewhere).
		m.neg.forget(session)
	}
	if m.stats.fences.Load() != fences {
		// The node fenced while the record was on its way: the fence
		// discarded this session's changes (a peer may have started it
		// afresh), and a record that landed late is void, for it predates
		// the lease the node renews next (orphaned).
		return 0, ErrCreationLapsed
	}
	// created: a brand-new session at epoch 1, or one started afresh after
	// an End, one epoch above it.
	epoch := cur.Epoch
	switch {
	case created && epoch > 1:
		// Started afresh after an End: fence the epochs below, so that a
		// write of the node that ended it (whose record of the End may have
		// lost its reply, so it still holds the old epoch) can never show in
		// the new session. The owner index is written meanwhile: one round
		// for both before the first write.
		// Until the fence is written the session is not held: a retry
		// finds the row naming this node and adopts it (claim and fence).
		idx := make(chan error, 1)
		go func() { idx <- m.store.IndexOwner(ctx, m.cfg.NodeID, session, epoch, m.ttl(session)) }()
		err := m.store.Fence(ctx, session, epoch, nil)
		m.indexed(session, <-idx)
		if err != nil {
			return 0, err
		}
		held, ok := m.holdUnlessFenced(session, epoch, fences)
		if !ok {
			return 0, ErrCreationLapsed // as above: the fence came while it was fenced
		}
		m.stats.created.Add(1)
		m.neg.forget(session)
		return held, nil
	case created:
		// A brand-new session at epoch 1: held below.
	case cur.Node == m.cfg.NodeID && !cur.Ended:
		// The row names this node but this process does not hold it: an
		// earlier attempt of this very create whose reply was lost, or a row
		// left by an earlier incarnation of this node, perhaps released (a
		// peer may be claiming it) or with writes still in flight. Only a
		// claim and a fence make it this process's without doubt: adopt it.
		// A fence since the creation began discarded its changes, as on
		// the other paths: the adoption then does not hold the session.
		a, err := m.adopt(ctx, session, AdoptOptions{Force: true, From: m.cfg.NodeID}, fences)
		if m.stats.fences.Load() != fences {
			return 0, ErrCreationLapsed
		}
		if err != nil {
			return 0, err
		}
		if len(a.Items) > 0 {
			// The row holds state: not this create's own record (nothing
			// is written before a recording returns) but a session the
			// host must adopt. Held, the restored items would lie under
			// the new session's changes, a state it never had (I2). The
			// claim and fence stand; the next Adopt claims it again and
			// returns the items.
			m.forgetOwned(session, a.Epoch)
			return 0, &OwnedElsewhereError{Session: session, Owner: m.cfg.NodeID, Epoch: a.Epoch, Stored: true}
		}
		return a.Epoch, nil
	default:
		if ok, err := m.voidRecord(ctx, session, cur); err != nil {
			return 0, err
		} else if ok {
			// Another node's record that holds nothing: start afresh over it.
			return m.createOver(ctx, session, cur, fences)
		}
		return 0, &OwnedElsewhereError{Session: session, Owner: cur.Node, Epoch: cur.Epoch}
	}
	// An Adopt of this very session that ran while the record was on its
	// way (it found the row naming this node) may hold it one epoch up,
	// fenced there: writes go at the epoch held.
	held, ok := m.holdUnlessFenced(session, epoch, fences)
	if !ok {
		return 0, ErrCreationLapsed
	}
	m.stats.created.Add(1)
	m.neg.forget(session)
	m.indexed(session, m.store.IndexOwner(ctx, m.cfg.NodeID, session, held, m.ttl(session)))
	return held, nil
}

// sinceTime is when this node's current unbroken lease began (Lease.Since).
func (m *Manager) sinceTime() time.Time { return time.Unix(0, m.since.Load()) }

// voidRecord reports whether cur, another node's ownership record found by a
// creation, holds nothing anyone is owed, so that the creation may start the
// session afresh over it: no state of the session is persisted, and its owner
// either is not live (it died, or lapsed, before its first write) or claimed
// it before its current lease began (Lease.Since, with MaxClockSkew to spare
// for steps of its clock): a record that landed late, after the owner fenced
// and discarded the session, or one of an earlier incarnation. A live owner
// that recorded the session in its current lease keeps it: that is the
// create race, which the first record wins.
func (m *Manager) voidRecord(ctx context.Context, session string, cur store.Owner) (bool, error) {
	if cur.Node == "" || cur.Node == m.cfg.NodeID || cur.Ended || cur.Released {
		return false, nil
	}
	live, l, err := m.liveLease(ctx, cur.Node)
	if err != nil {
		return false, err
	}
	if live && (l.since.IsZero() || cur.ClaimedAt.IsZero() || !cur.ClaimedAt.Add(m.cfg.MaxClockSkew).Before(l.since)) {
		return false, nil
	}
	items, err := m.store.ReadState(ctx, session)
	if err != nil {
		return false, err
	}
	return len(items) == 0, nil
}

// createOver records session as this node's over a void record (voidRecord):
// a claim on the record's epoch, then a fence with nothing restored, so the
// session starts afresh from this node's changes. fences is the node's fence
// count when the creation began: a fence since discarded its changes.
func (m *Manager) createOver(ctx context.Context, session string, cur store.Owner, fences uint64) (uint64, error) {
	won, now, err := m.store.Claim(ctx, session, cur, m.cfg.NodeID, m.ttl(session))
	if err != nil {
		return 0, err
	}
	if !won {
		if now.Node == m.cfg.NodeID {
			return 0, fmt.Errorf("residency: session %q: a claim over a void record has an unknown outcome; retrying", session)
		}
		if now.Epoch == 0 || now.Ended {
			// The record expired or ended while the claim was on its way:
			// nobody owns the session, and a retry records it afresh.
			return 0, fmt.Errorf("residency: session %q: the void record a creation claimed expired or ended meanwhile; retrying", session)
		}
		return 0, &OwnedElsewhereError{Session: session, Owner: now.Node, Epoch: now.Epoch}
	}
	idx := make(chan error, 1)
	go func() { idx <- m.store.IndexOwner(ctx, m.cfg.NodeID, session, now.Epoch, m.ttl(session)) }()
	err = m.store.Fence(ctx, session, now.Epoch, nil)
	m.indexed(session, <-idx)
	if err != nil {
		return 0, err
	}
	held, ok := m.holdUnlessFenced(session, now.Epoch, fences)
	if !ok {
		return 0, ErrCreationLapsed // the node fenced since the creation began
	}
	m.stats.created.Add(1)
	m.stats.voidRecords.Add(1)
	m.neg.forget(session)
	m.cfg.Logger.Info("holdover: new session recorded over a void record", "session", session, "previous_owner", cur.Node, "epoch", now.Epoch)
	return held, nil
}

// indexed logs a failed update of the owner index of a session this node
// created: the index is a hint for bulk takeover; ownership is recorded.
func (m *Manager) indexed(session string, err error) {
	if err != nil {
		m.cfg.Logger.Warn("holdover: owner index not updated", "session", session, "err", err)
	}
}

// AdmitNew reports whether a change to session may be accepted as far as
// ownership creation goes: always for a session this node owns; for others
// unless the creations queued ahead of it, at the recent creation latency
// (raised at once by a slower creation, and at least the time the creations
// in flight have gone without one ending), would keep it waiting longer than
// its creation budget (AdmissionOf, else
// CreationBudget; then the refusal is counted: Stats.CreationRefusals). The
// queue ahead is the creations started (in flight or waiting for a slot) plus
// the new sessions admitted within the last lead of each (AdmissionOf, else
// AdmitLead: their flush delay), whose creations are still to start; it takes
// one round of MaxConcurrentCreates at a time; while one creation alone takes
// longer than the budget, no new session is admitted, and with no creation
// left to measure the store by, a probe measures it (see probe). Until the
// first creation ends the latency is that of taking the lease at Start. That
// latency was measured at the concurrency the creations ran at, so a queue
// longer than the creation window (a slow start: see creationWindow) is
// admitted only where it would fit the budget one creation at a time. A
// burst of new sessions is turned away before it holds up the flushes of the
// sessions already running, which stay admitted.
func (m *Manager) AdmitNew(session string) bool { return m.admit(session, true) }

// WouldAdmitNew is AdmitNew without counting the session as admitted: a host
// asks it before it does any work for a new session (such as looking for a
// stale session under its ID), so that a burst it would refuse anyway costs
// the store nothing; the Commit that follows asks AdmitNew. A refusal is
// counted, and probes the store, as AdmitNew's.
func (m *Manager) WouldAdmitNew(session string) bool { return m.admit(session, false) }

// admit is AdmitNew; record counts an admission as queued.
func (m *Manager) admit(session string, record bool) bool {
	if m.cfg.CreationBudget <= 0 && m.cfg.AdmissionOf == nil {
		return true
	}
	// A session this node owns (most commits that reach here) is admitted
	// before its family is looked up.
	if _, ok := m.Epoch(session); ok {
		return true
	}
	budget, lead := m.admission(session)
	if budget <= 0 {
		return true
	}
	now := m.elapsed()
	creating := m.creating.Load()
	queued := creating + m.admits.pending(now)
	rounds := queued/int64(m.cfg.MaxConcurrentCreates) + 1 // the queue ahead, then its own
	// A creation takes at least as long as those in flight have gone
	// without progress: a store that stalls at once stops admissions at
	// once, not after its slow creations have ended and moved the average.
	latency := m.createNS.Load()
	if creating > 0 {
		latency = max(latency, int64(now)-m.createMoved.Load())
	}
	if time.Duration(rounds*latency) <= budget && m.window.admits(now, queued, time.Duration(latency), budget) {
		if record {
			m.admits.add(now, lead)
		}
		return true
	}
	m.stats.creationRefusals.Add(1)
	if queued == 0 {
		// No creation is left to measure the store by: probe it, so that
		// new sessions are admitted again as soon as it is fast again.
		m.probe(session, budget)
	}
	return false
}

// admission is session's creation budget and admit lead: its family's
// (AdmissionOf), else CreationBudget and AdmitLead.
func (m *Manager) admission(session string) (budget, lead time.Duration) {
	budget, lead = m.cfg.CreationBudget, m.cfg.AdmitLead
	if m.cfg.AdmissionOf != nil {
		b, l := m.cfg.AdmissionOf(session)
		budget, lead = cmp.Or(b, budget), cmp.Or(l, lead)
	}
	return budget, lead
}

// Probing. While a single creation is estimated to take longer than a new
// session's budget, that session is refused even with no creation queued:
// admitting it anyway (one at a time, to keep measuring) acknowledged a
// session whose creation then outlived its window, lost when its node
// failed. The estimate is measured instead by a probe that acknowledges
// nothing: serial reads of the refused session's row (a Paxos round, as a
// creation is, without its write), one after another, each folded into the
// estimate as a creation is, until it fits the budget or probeReads have
// run; one probe at a time. A probe whose every read fits the budget shows
// the store fast again: the estimate comes down to its slowest read, which
// one far slower creation before it would otherwise keep above the budget
// for several probes, each started by a refusal.
const (
	probeReads   = 16
	probeTimeout = 2 * time.Second
)

func (m *Manager) probe(session string, budget time.Duration) {
	if m.closed.Load() || !m.probing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer m.probing.Store(false)
		var slowest time.Duration
		for range probeReads {
			ctx, cancel := context.WithTimeout(m.bg, probeTimeout)
			began := time.Now()
			_, _, err := m.store.ReadOwnerSerial(ctx, session)
			took := time.Since(began)
			cancel()
			switch {
			case m.bg.Err() != nil:
				return // closed
			case err != nil && !errors.Is(err, context.DeadlineExceeded):
				return // no measure: a later refusal probes again
			}
			m.stats.probes.Add(1)
			m.createTook(took) // a read past the timeout counts as taking that long
			slowest = max(slowest, took)
			if m.creating.Load() > 0 || time.Duration(m.createNS.Load()) <= budget {
				return
			}
		}
		for old := m.createNS.Load(); slowest <= budget && m.creating.Load() == 0 && int64(slowest) < old; old = m.createNS.Load() {
			if m.createNS.CompareAndSwap(old, max(int64(slowest), 1)) {
				return
			}
		}
	}()
}

// admitMeters counts the new sessions admitted lately, one meter per lead:
// a session admitted with a lead of 1s starts its creation a second later,
// and counts as queued until then, while one of 50ms stops counting after
// 50ms.
type admitMeters struct {
	mu     sync.Mutex
	byLead map[time.Duration]*admitMeter
}

// add counts one admission at now, with its lead.
func (a *admitMeters) add(now, lead time.Duration) {
	if lead <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.byLead[lead]
	if m == nil {
		if a.byLead == nil {
			a.byLead = make(map[time.Duration]*admitMeter)
		}
		m = &admitMeter{span: lead}
		a.byLead[lead] = m
	}
	m.rotate(now)
	m.cur++
}

// pending is the number of admissions still within their lead at now.
func (a *admitMeters) pending(now time.Duration) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var n int64
	for _, m := range a.byLead {
		n += m.recent(now)
	}
	return n
}

// admitMeter counts admissions over a sliding span, in two buckets of the
// span's width: the count at a time is the current bucket's plus the
// previous one's share that is still within the span. admitMeters.mu guards
// it.
type admitMeter struct {
	span      time.Duration
	start     time.Duration // when the current bucket began
	cur, prev int64
}

// rotate moves the buckets on to now.
func (a *admitMeter) rotate(now time.Duration) {
	switch {
	case now-a.start >= 2*a.span:
		a.start, a.cur, a.prev = now, 0, 0
	case now-a.start >= a.span:
		a.start, a.cur, a.prev = a.start+a.span, 0, a.cur
	}
}

// recent is the number of admissions within the span before now, rounded
// up: an admission that may still be within it counts (a lone one in the
// previous bucket counted 0 as soon as a new bucket began).
func (a *admitMeter) recent(now time.Duration) int64 {
	a.rotate(now)
	return a.cur + (a.prev*int64(a.span-(now-a.start))+int64(a.span)-1)/int64(a.span)
}

// createTook folds the latency of one ownership creation into the estimate
// AdmitNew judges the queue by: a slower creation raises it to its own
// latency at once, a faster one lowers it by an eighth of the difference
// (the first sets it), so that admissions stop as soon as the store slows
// and resume as it keeps up again. It also marks the creations' progress.
func (m *Manager) createTook(d time.Duration) {
	m.createMoved.Store(int64(m.elapsed()))
	for {
		old := m.createNS.Load()
		next := int64(d)
		if old != 0 && m.createSeen.Load() && next < old {
			next = old + (next-old)/8
		}
		if m.createNS.CompareAndSwap(old, max(next, 1)) {
			m.createSeen.Store(true)
			return
		}
	}
}

// Ended forgets a session that ended, once its End is written: its ownership
// row (if this node still owns it at the same epoch) is marked ended for
// EndedTTL, so a session started afresh with the same ID ranks above the End,
// and its index entry is removed. When marking the row fails the session
// stays owned: call Ended again. When only removing the index entry (a hint
// for takeovers) fails, the session is already forgotten and the error says
// so; a takeover of this node skips the stale entry.
func (m *Manager) Ended(ctx context.Context, session string) error {
	e, ok := m.Epoch(session)
	if !ok {
		return nil
	}
	for {
		// In doubt from before the record is sent until the session is
		// forgotten: a refresh that finds the row ended meanwhile must not
		// take it for a peer's adoption and discard what the host
		// committed since.
		m.endsInDoubt.Store(session, e)
		applied, err := m.store.EndOwner(ctx, session, m.cfg.NodeID, e, m.cfg.EndedTTL)
		if err != nil {
			return err
		}
		// Not applied: a retry after a lost reply (the row is ended), or a
		// recovery that moved the row one epoch up while the record was on
		// its way: the session is held there, its row live; record the End
		// at that epoch.
		if now, held := m.Epoch(session); !applied && held && now > e {
			e = now
			continue
		}
		break
	}
	m.forgetOwned(session, e)
	m.endsInDoubt.Delete(session)
	m.rememberEnded(session, e+1) // applied or not (a retry after a lost reply), the likely row
	return m.store.UnindexOwner(ctx, m.cfg.NodeID, session, e)
}

// EndInDoubt reports whether an Ended of session is under way, or the last
// one failed, while this node still holds it at the epoch Ended tried: the
// row may be ended already
// (the reply lost after Cassandra applied the End). Changes of the session
// started afresh meanwhile must not be written at that epoch, which nobody
// could adopt under an ended row, and which a fresh start at the next epoch
// would fence: call Ended again first, then own the session afresh
// (EnsureOwned), as after any End.
func (m *Manager) EndInDoubt(session string) bool {
	e, ok := m.endsInDoubt.Load(session)
	if !ok {
		return false
	}
	held, owned := m.Epoch(session)
	return owned && held == e.(uint64)
}

// Forget drops session from this node's ownership map without touching
// Cassandra (the host discarded it).
func (m *Manager) Forget(session string) {
	m.doubtful.Delete(session)
	m.endsInDoubt.Delete(session)
	m.mu.Lock()
	delete(m.owned, session)
	m.mu.Unlock()
}

// maxEndedHints bounds the ended-epoch hints; past it one is dropped at
// random (a missing hint costs a round, never a wrong outcome).
const maxEndedHints = 4096

// rememberEnded records the epoch of session's ended row.
func (m *Manager) rememberEnded(session string, epoch uint64) {
	m.mu.Lock()
	if len(m.ended) >= maxEndedHints {
		for k := range m.ended {
			delete(m.ended, k)
			break
		}
	}
	m.ended[session] = epoch
	m.mu.Unlock()
}

// takeEnded returns and forgets the ended-row epoch hint of session (0: none).
func (m *Manager) takeEnded(session string) uint64 {
	m.mu.Lock()
	e := m.ended[session]
	delete(m.ended, session)
	m.mu.Unlock()
	return e
}

// ownedSnapshot copies the ownership map, for work done without the lock.
func (m *Manager) ownedSnapshot() map[string]uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return maps.Clone(m.owned)
}

// holdUnlessFenced records that this node owns session at epoch, unless the
// node has fenced since its fence count was fences (read before the work
// that won the session checked the lease): that fence did not report the
// session among those it may have lost, nor did the recovery that followed
// settle it, and a peer may have adopted it meanwhile. Epochs held in memory
// only rise: a slower adoption finishing after a later one (a forced and a
// normal Adopt of one session) must not lower the epoch below the one this
// node fenced at. It returns the epoch held, which a concurrent adoption of
// the session may have raised above epoch.
func (m *Manager) holdUnlessFenced(session string, epoch, fences uint64) (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stats.fences.Load() != fences {
		return 0, false
	}
	if epoch > m.owned[session] {
		m.owned[session] = epoch
	}
	return m.owned[session], true
}

// raiseOwned moves session from epoch from to epoch to, if this node still
// owns it at from.
func (m *Manager) raiseOwned(session string, from, to uint64) {
	m.mu.Lock()
	if e, ok := m.owned[session]; ok && e == from && to > from {
		m.owned[session] = to
	}
	m.mu.Unlock()
}

// forgetOwned removes session if it is still owned at epoch.
func (m *Manager) forgetOwned(session string, epoch uint64) (forgot bool) {
	m.mu.Lock()
	if e, ok := m.owned[session]; ok && e == epoch {
		delete(m.owned, session)
		forgot = true
	}
	m.mu.Unlock()
	return forgot
}

// ReleaseAll marks every session this node owns as released, so peers adopt
// them at once (graceful shutdown: call it after the buffer has flushed). It
// returns how many were released. This node gives up every session it owned,
// released or not (a release whose reply was lost may have applied): those it
// could not release become adoptable when the lease expires.
func (m *Manager) ReleaseAll(ctx context.Context) (int, error) {
	work := m.ownedSnapshot()

	var (
		released atomic.Int64
		firstErr error
		errMu    sync.Mutex
		wg       sync.WaitGroup
		sem      = make(chan struct{}, 32)
	)
	for s, e := range work {
		wg.Add(1)
		sem <- struct{}{}
		go func(s string, e uint64) {
			defer func() { <-sem; wg.Done() }()
			var (
				ok  bool
				err error
			)
			for {
				m.releasing.Store(s, e)
				ok, err = m.store.Release(ctx, s, m.cfg.NodeID, e, m.ttl(s))
				// Not applied (or its reply lost): a recovery moved the row
				// one epoch up while the release was on its way, and holds
				// the session there: release it at that epoch.
				if now, held := m.Epoch(s); !ok && held && now > e {
					e = now
					continue
				}
				break
			}
			// Given up either way: a release whose reply was lost may have
			// applied, and a peer adopts a released session without a
			// fence, so this node must never write it again.
			m.forgetOwned(s, e)
			if err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
				return
			}
			if ok {
				released.Add(1)
				m.stats.released.Add(1)
			}
		}(s, e)
	}
	wg.Wait()
	return int(released.Load()), firstErr
}

// StopAdopting is the start of a graceful shutdown: the adoptions waiting
// for a dead owner's lease (AdoptOptions.Wait) return ErrClosed at once,
// and takeovers start no further adoption (they return ErrClosed with
// their report once the adoptions they started have finished). Adoptions
// past their wait finish as usual, so the caller can release what they
// adopted. Close calls it; calling it again does nothing.
func (m *Manager) StopAdopting() {
	m.endAdopts()
}

// Close stops renewing the lease. It does not release sessions (ReleaseAll
// does) and leaves the lease to expire by its TTL unless dropLease is set, in
// which case it deletes the lease so peers see the node gone at once. It
// waits for the owner-index updates of earlier adoptions until ctx ends.
func (m *Manager) Close(ctx context.Context, dropLease bool) error {
	if !m.closed.CompareAndSwap(false, true) {
		return nil
	}
	m.StopAdopting()
	close(m.stop)
	m.refreshCancel()
	defer m.bgCancel()
	m.indexMu.Lock() // an adoption adding an index update has done so now
	m.indexClosed = true
	m.indexMu.Unlock()
	m.StopPreparing()
	indexed := make(chan struct{})
	go func() { m.indexing.Wait(); close(indexed) }()
	select {
	case <-indexed:
	case <-ctx.Done():
		// The index is a hint: the updates still on their way end with
		// ctx rather than hold Close up.
		m.bgCancel()
		<-indexed
	}
	if m.lastRenew.Load() != 0 {
		<-m.done
		<-m.refreshDone
	}
	m.neg.close()
	if dropLease && !m.replaced.Load() {
		return m.store.DropLease(ctx, m.cfg.NodeID, m.incarnation)
	}
	return nil
}
