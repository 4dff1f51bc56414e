package buffer

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Buffer coalesces committed changes per (session, key) and hands whole-session
// snapshots to a FlushFunc. All methods are safe for concurrent use.
type Buffer struct {
	cfg        Config
	flush      FlushFunc
	clock      Clock
	base       time.Time // buffer time 0; internal times are nanoseconds since it
	maxPending int64
	maxItems   int
	seed       uint64
	fams       []family       // index 0: the default family, then Config.Families
	prefixes   []prefixFamily // Config.Families' prefixes, longest first

	held atomic.Int64 // bytes counted against MaxPendingBytes (pending and in flight)
	// overloadedFams counts the families refusing with ErrOverloaded. Commit reads
	// it before its session's family's flag, so that while none refuses the check
	// costs one load of a word that seldom changes, as it did before families.
	overloadedFams atomic.Int32
	wake           atomic.Int64 // when the scheduler runs its next pass unless kicked
	seq            seqClock

	kick     chan struct{}
	tick     chan struct{}
	syncReq  chan chan struct{} // runs a pass and replies: lets tests wait for the scheduler
	stop     chan struct{}
	loopDone chan struct{}
	timer    Timer // owned by the scheduler goroutine
	timerAt  int64

	mu       sync.Mutex // guards the fields below
	paused   bool
	stopping bool // Close gave up or finished: start no more flights
	ready    readyQueue
	retry    retryHeap
	running  int // flush workers
	workers  sync.WaitGroup

	flightCtx     context.Context
	cancelFlights context.CancelFunc

	closing  atomic.Bool
	closedCh chan struct{}
	report   Report
	closeErr error

	ctr counters

	watchTick   time.Duration // the window watchdog's period; 0: no family has a bound
	watchOldest []int64       // the watchdog's scratch: oldest unflushed change per family
	watchFlying []int64       // the watchdog's scratch: longest write under way per family
	// calls has one slot per flush worker (Concurrency) while a family has a
	// bound: the write it has under way, for the watchdog (window.go).
	// freeCalls holds the slots no worker uses; b.mu guards it.
	calls     []callSlot
	freeCalls []int32

	shards [shardCount]shard
}

// New returns a running Buffer that writes through flush. It starts a scheduler
// goroutine; Close stops it.
func New(cfg Config, flush FlushFunc) (*Buffer, error) {
	if flush == nil {
		return nil, fmt.Errorf("%w: flush func is nil", ErrInvalid)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Families = slices.Clone(cfg.Families)
	b := &Buffer{
		cfg:        cfg,
		flush:      flush,
		clock:      cfg.Clock,
		maxPending: cfg.MaxPendingBytes,
		maxItems:   cfg.MaxSessionItems,
		seed:       hashSeed(rand.Uint64()),
		kick:       make(chan struct{}, 1),
		tick:       make(chan struct{}, 1),
		syncReq:    make(chan chan struct{}),
		stop:       make(chan struct{}),
		loopDone:   make(chan struct{}),
		timerAt:    math.MaxInt64,
		closedCh:   make(chan struct{}),
	}
	b.fams, b.prefixes = families(cfg)
	b.base = b.clock.Now()
	b.wake.Store(math.MaxInt64)
	b.watchOldest = make([]int64, len(b.fams))
	for i := range b.fams {
		if w := &b.fams[i].window; w.max != 0 {
			b.watchTick = min(cmp.Or(b.watchTick, w.tick()), w.tick())
		}
	}
	if b.watchTick != 0 {
		b.watchFlying = make([]int64, len(b.fams))
		b.calls = make([]callSlot, cfg.Concurrency)
		b.freeCalls = make([]int32, cfg.Concurrency)
		for i := range b.freeCalls {
			b.freeCalls[i] = int32(len(b.freeCalls) - 1 - i)
		}
	}
	b.flightCtx, b.cancelFlights = context.WithCancel(context.Background())
	for i := range b.shards {
		b.shards[i].sessions = make(map[string]*session)
		b.shards[i].seed = hashSeed(b.seed) // keys hash apart from session IDs
		b.shards[i].fams = make([]famShard, len(b.fams))
	}
	go b.loop()
	b.startWatchdog()
	return b, nil
}

func (b *Buffer) now() int64 { return int64(b.clock.Now().Sub(b.base)) }

func (b *Buffer) timeAt(t int64) time.Time { return b.base.Add(time.Duration(t)) }

func (b *Buffer) shardIndex(session string) uint64 {
	return strhash(session, b.seed) >> (64 - shardBits)
}

func (b *Buffer) shardOf(session string) *shard {
	return &b.shards[b.shardIndex(session)]
}

// forget removes a session with no unflushed state left from its shard.
func (b *Buffer) forget(sh *shard, s *session) {
	sh.forget(s)
	b.held.Add(-sessionOverhead)
}

// create adds a session of family fam to the shard's table.
func (sh *shard) create(id string, fam uint8) *session {
	s := &session{id: strings.Clone(id), sh: sh, heapIdx: -1, fam: fam}
	sh.sessions[s.id] = s
	sh.last = s
	return s
}

// PendingSessions lists the sessions with unflushed state (pending changes, or a
// flush in flight or waiting to be retried), in no particular order.
func (b *Buffer) PendingSessions() []string {
	var ids []string
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		for id := range sh.sessions {
			ids = append(ids, id)
		}
		sh.mu.Unlock()
	}
	return ids
}

// Discard drops the unflushed state of the given sessions without writing it, for
// when this node lost their ownership. It returns the number of pending items
// dropped. It waits for nothing: a flush of one of these sessions already in flight
// completes (or fails) on its own, and is neither retried nor put back. Flush calls
// waiting on these sessions stop waiting for them.
func (b *Buffer) Discard(sessions ...string) int {
	n := 0
	for _, id := range sessions {
		sh := b.shardOf(id)
		sh.mu.Lock()
		s := sh.sessions[id]
		if s == nil {
			sh.mu.Unlock()
			continue
		}
		k := s.items.n
		n += k
		fs := sh.famOf(s)
		fs.items -= k
		sh.discarded += uint64(k)
		b.held.Add(-s.bytes)
		s.items.reset()
		s.bytes = 0
		s.ended = false
		if s.where == placeDue {
			fs.due.remove(s)
		}
		s.releaseWaits(true)
		if s.flying {
			s.dropFly = true
			s.where = placeNone
		} else {
			b.forget(sh, s)
		}
		sh.mu.Unlock()
	}
	return n
}

// SinceSnapshot reports what of session was committed after its last snapshot was
// taken, and so waits for a later flush: whether End was called, and, for each of
// keys, whether a change of it was committed. Called from a FlushFunc, it tells the
// changes the snapshot being written carries from those committed during its flight
// (a change of the same value included).
func (b *Buffer) SinceSnapshot(session string, keys []string) (ended bool, changed []bool) {
	changed = make([]bool, len(keys))
	sh := b.shardOf(session)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.lookup(session)
	if s == nil {
		return false, changed
	}
	for i, k := range keys {
		e, _ := s.lookup(k)
		changed[i] = e != nil
	}
	return s.ended, changed
}

// Pending reports whether a session has unflushed state: pending changes, or a flush
// in flight or waiting to be retried.
func (b *Buffer) Pending(session string) bool {
	sh := b.shardOf(session)
	sh.mu.Lock()
	_, ok := sh.sessions[session]
	sh.mu.Unlock()
	return ok
}
