package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Generator drives one run of load. Create it with New, run it once with Run;
// Redirect may be called while Run is running.
type Generator struct {
	cfg Config
	cl  client

	started atomic.Bool
	ready   chan struct{} // closed once Run has probed the nodes and built the sessions
	start   time.Time

	nodes    []*nodeState
	sessions []*session
	events   sync.WaitGroup // events and resyncs in flight

	logMu sync.Mutex

	mu    sync.Mutex // guards the counters below
	stats counters
}

// nodeState is one node as the generator sees it.
type nodeState struct {
	Node
	index      int
	id         string                // the node's own ID, from GET /v1/info
	flushDelay time.Duration         // from GET /v1/info
	families   map[string]familyInfo // from GET /v1/info, by name
	failed     atomic.Bool
	failedAt   time.Time // guarded by Generator.mu
}

// session is one session under load. mu is held by whoever works on it: an
// event in flight, a resync or an adoption; so a session never has two
// requests in flight.
type session struct {
	id     string
	fam    int // 0: no family; k: Config.Families[k-1]
	mu     sync.Mutex
	node   atomic.Int32 // index of the node it is assigned to
	parked atomic.Bool  // its node failed; waiting for a redirect
	broken atomic.Bool  // a redirect could not restore it; no more load
	born   atomic.Int64 // when a node acknowledged its creation or was found to hold it (Unix ns); 0: not yet
	resync bool         // the outcome of its last request is unknown (guarded by mu)
	m      model        // guarded by mu
	rng    *rand.Rand   // guarded by mu
}

type counters struct {
	sent, acked, saturated, eventAdoptions int64
	errs                                   map[string]int64
	latency, interval, adopt               histogram
	failover                               samples // failure to the survivor's first answer, per session

	failed                                 []string
	redirected, adopted, notFound, corrupt int
	unrestored, finalChecked, finalBad     int
	lostBeyond, lostWithin, adoptRetries   int64
	firstAdopt, firstFailed, firstDown     time.Time // firstDown: when the failover clock started
	ackedAtFailure                         int64     // acked when the first node failed
	window                                 time.Duration
	fams                                   []famCounters // 0: the sessions of no family, then Config.Families
}

// New validates cfg (after defaults) and returns a Generator.
func New(cfg Config) (*Generator, error) {
	cfg = cfg.withDefaults(time.Now())
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loadgen: invalid config: %w", err)
	}
	g := &Generator{cfg: cfg, cl: client{http: cfg.Client}, ready: make(chan struct{})}
	g.stats.errs = map[string]int64{}
	g.stats.fams = make([]famCounters, 1+len(cfg.Families))
	for i, n := range cfg.Nodes {
		g.nodes = append(g.nodes, &nodeState{Node: n, index: i})
	}
	return g, nil
}

// logf writes one progress line, if Progress is set.
func (g *Generator) logf(format string, args ...any) {
	if g.cfg.Progress == nil {
		return
	}
	g.logMu.Lock()
	defer g.logMu.Unlock()
	fmt.Fprintf(g.cfg.Progress, "load: "+format+"\n", args...)
}

// countErr counts an error of kind; the first of each kind is logged with
// its message (err, when not nil), so that a count in the progress lines
// can be told apart.
func (g *Generator) countErr(kind string, err error) {
	g.mu.Lock()
	first := g.stats.errs[kind] == 0
	g.stats.errs[kind]++
	g.mu.Unlock()
	if first && err != nil {
		g.logf("first %s error: %v", kind, err)
	}
}

func (g *Generator) node(name string) *nodeState {
	for _, n := range g.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func (g *Generator) nodeByID(id string) *nodeState {
	for _, n := range g.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// probe reads every node's ID, flush delay and families.
func (g *Generator) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, n := range g.nodes {
		info, err := g.cl.info(ctx, n.URL)
		if err != nil {
			return fmt.Errorf("loadgen: node %s (%s): GET /v1/info: %w", n.Name, n.URL, err)
		}
		n.id = info.Node
		n.flushDelay = time.Duration(info.FlushDelayMS) * time.Millisecond
		n.families = map[string]familyInfo{}
		for _, f := range info.FamilyStats {
			if f.Name != "" {
				n.families[f.Name] = f
			}
		}
		if err := g.checkFamilies(n); err != nil {
			return err
		}
	}
	return nil
}

// Run sends load for Config.Duration (longer with a Failure, see
// Failure.ContinueFor), fails and redirects as configured, reads every
// session back, and returns what it measured. It may be called once. It
// returns an error if a node cannot be probed at the start, if Failure.Fail
// fails, or if ctx ends first (the Report then covers the run so far).
func (g *Generator) Run(ctx context.Context) (Report, error) {
	if !g.started.CompareAndSwap(false, true) {
		return Report{}, errors.New("loadgen: Run called twice")
	}
	if err := g.probe(ctx); err != nil {
		close(g.ready)
		return Report{}, err
	}
	bounds := familyBounds(g.cfg.Sessions, g.cfg.Families)
	for i := range g.cfg.Sessions {
		fam := 0
		for k := len(bounds) - 1; k >= 0 && i < bounds[k]; k-- {
			fam = k + 1
		}
		s := &session{
			id:  g.sessionID(i, fam),
			fam: fam,
			rng: rand.New(rand.NewPCG(uint64(g.cfg.Seed), uint64(i))),
		}
		s.node.Store(int32(i % len(g.nodes)))
		g.sessions = append(g.sessions, s)
		g.stats.fams[fam].sessions++
	}
	for k := range g.stats.fams {
		for _, n := range g.nodes {
			g.stats.fams[k].flushDelay = max(g.stats.fams[k].flushDelay, g.flushDelay(n, k))
		}
	}
	mix := g.familyMix()
	g.start = time.Now()
	close(g.ready)
	for _, n := range g.nodes {
		g.logf("node %s = %s id=%s flush_delay=%v%s", n.Name, n.URL, n.id, n.flushDelay, g.familyDelays(n))
	}
	g.logf("%d sessions%s, %.0f events/s for %v", g.cfg.Sessions, mix, g.cfg.Rate, g.cfg.Duration)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); g.dispatch(runCtx, stop) }()
	go func() { defer bg.Done(); g.progress(stop) }()

	var failErr error
	end := g.start.Add(g.cfg.Duration)
	if f := g.cfg.Failure; f != nil {
		failErr = g.failAndRedirect(runCtx, f)
		if failErr == nil {
			end = later(end, time.Now().Add(f.ContinueFor))
		}
	}
	if failErr == nil {
		select {
		case <-time.After(time.Until(end)):
		case <-ctx.Done():
		}
	}
	close(stop)
	bg.Wait()
	g.events.Wait()

	if ctx.Err() == nil {
		g.finalCheck(ctx)
	}
	rep := g.report()
	g.logf("done: %v", rep)
	if failErr != nil {
		return rep, failErr
	}
	return rep, ctx.Err()
}

// failAndRedirect waits for the failure moment, fails the node and redirects
// its sessions.
func (g *Generator) failAndRedirect(ctx context.Context, f *Failure) error {
	select {
	case <-time.After(time.Until(g.start.Add(f.After))):
	case <-ctx.Done():
		return ctx.Err()
	}
	n := g.node(f.Node)
	if f.WaitCreated > 0 {
		g.waitCreated(ctx, n, f.WaitCreated)
	}
	at := time.Now()
	g.markFailed(n, at)
	g.logf("failing node %s at t=%.1fs", n.Name, at.Sub(g.start).Seconds())
	if err := f.Fail(ctx, n.Node); err != nil {
		return fmt.Errorf("loadgen: failing node %s: %w", n.Name, err)
	}
	// The hook may wait before it fails the node: the failover clock starts
	// once it has, not at at (which bounds the window, as no event went to
	// the node after it).
	return g.redirect(ctx, n.Name, at, time.Now())
}

// waitCreated waits, at most limit, until every session assigned to n has
// had its creation acknowledged at least its durability window ago (so it
// must be found after the failure), and says how long it waited.
func (g *Generator) waitCreated(ctx context.Context, n *nodeState, limit time.Duration) {
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		missing, now := 0, time.Now()
		for _, s := range g.sessions {
			if int(s.node.Load()) != n.index || s.broken.Load() {
				continue
			}
			if b := s.born.Load(); b == 0 || now.Sub(time.Unix(0, b)) < g.window(n, s.fam) {
				missing++
			}
		}
		waited := now.Sub(start)
		switch {
		case missing == 0:
			if waited >= 20*time.Millisecond {
				g.logf("every session of %s created; failure held %.1fs past its time for that", n.Name, waited.Seconds())
			}
			return
		case waited >= limit:
			g.logf("%d sessions of %s still not created after %.1fs of waiting: failing it anyway", missing, n.Name, waited.Seconds())
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// dispatch launches events at the configured rate until stop closes.
func (g *Generator) dispatch(ctx context.Context, stop <-chan struct{}) {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	burst := int64(g.cfg.Rate/10) + 1 // catch up at most 100ms after a stall
	var issued int64
	next := 0 // sessions take turns, so each gets about Rate/Sessions events a second
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case now := <-tick.C:
			due := int64(g.cfg.Rate*now.Sub(g.start).Seconds()) - issued
			var short int64
			if due > burst {
				// Events more than the burst late are not sent: the rate
				// called for them, so they count as saturated.
				short = due - burst
				issued += short
				due = burst
			}
			for ; due > 0; due-- {
				issued++
				if !g.launch(ctx, &next) {
					short++
				}
			}
			if short > 0 {
				g.mu.Lock()
				g.stats.saturated += short
				g.mu.Unlock()
			}
		}
	}
}

// launch starts one event on the next idle session, in turn, that can take
// load; false if none was found in a few tries.
func (g *Generator) launch(ctx context.Context, next *int) bool {
	for range 8 {
		s := g.sessions[*next%len(g.sessions)]
		*next++
		if s.parked.Load() || s.broken.Load() || !s.mu.TryLock() {
			continue
		}
		if s.parked.Load() || s.broken.Load() || g.nodes[s.node.Load()].failed.Load() {
			s.mu.Unlock()
			continue
		}
		g.events.Add(1)
		go g.work(ctx, s)
		return true
	}
	return false
}

// work sends s its next event (or resyncs it first); s.mu is held and
// released here.
func (g *Generator) work(ctx context.Context, s *session) {
	defer g.events.Done()
	defer s.mu.Unlock()
	n := g.nodes[s.node.Load()]
	if s.resync {
		g.resync(ctx, s, n)
		return
	}
	ev := s.m.next(s.rng, g.cfg.AppendRatio, g.cfg.MaxHistory)
	g.mu.Lock()
	g.stats.sent++
	g.mu.Unlock()
	t0 := time.Now()
	rep, err := g.cl.event(ctx, n.URL, s.id, ev)
	t1 := time.Now()
	if err != nil {
		if isStatus(err, 503) && !n.failed.Load() {
			// Refused before anything was applied (overload, fenced, not
			// ready: the node's contract): nothing to read back.
			s.m.undo()
			g.countErr(errorKind(err), err)
			return
		}
		s.resync = true // outcome unknown until read back
		switch {
		case n.failed.Load():
			g.countErr("to_failed_node", nil) // the redirect reconciles it
		case ctx.Err() != nil:
		default:
			g.countErr(errorKind(err), err)
		}
		return
	}
	if !s.m.ack(int(rep.Version), t1) {
		s.resync = true
		g.countErr("version_mismatch", nil)
		g.logf("session %s: node %s answered version %d, model expected %d", s.id, n.Name, rep.Version, s.m.version())
		return
	}
	if s.born.Load() == 0 {
		s.born.Store(t1.UnixNano())
	}
	g.mu.Lock()
	g.stats.acked++
	g.stats.fams[s.fam].acked++
	if rep.Adopted {
		g.stats.eventAdoptions++
	}
	g.stats.latency.record(t1.Sub(t0))
	g.stats.interval.record(t1.Sub(t0))
	g.mu.Unlock()
}

// resync reads s back from its (live) node after a request whose outcome is
// unknown, checks it against the model and carries on from what the node
// holds. A node that no longer holds s resident is asked to adopt it.
func (g *Generator) resync(ctx context.Context, s *session, n *nodeState) {
	required := s.m.lastAcked() // a live node holding s must have every acknowledged event
	asked := time.Now()
	rep, err := g.cl.session(ctx, n.URL, s.id, false)
	if isStatus(err, 404) {
		asked = time.Now()
		required = s.m.ackedBy(asked.Add(-g.window(n, s.fam)))
		rep, err = g.cl.session(ctx, n.URL, s.id, true)
	}
	switch {
	case isStatus(err, 404):
		rep = sessionReply{}
	case err != nil:
		if !n.failed.Load() && ctx.Err() == nil {
			g.countErr("resync_"+errorKind(err), err)
		}
		return
	}
	c := s.m.reconcile(int(rep.Version), stateOf(rep), required, time.Now())
	s.resync = false
	switch {
	case rep.Version == 0:
		s.born.Store(0)
	case s.born.Load() == 0:
		s.born.Store(asked.UnixNano())
	}
	g.account(s, c, "resync on "+n.Name, asked)
}

// account adds a reconciliation's losses and corruption to the counters;
// at is when the loss happened (the failure of the session's node) or was
// found, for the age of what was lost.
func (g *Generator) account(s *session, c check, where string, at time.Time) {
	g.mu.Lock()
	g.stats.lostBeyond += int64(c.LostBeyondWindow)
	g.stats.lostWithin += int64(c.LostWithinWindow)
	fc := &g.stats.fams[s.fam]
	fc.lostBeyond += int64(c.LostBeyondWindow)
	fc.lostWithin += int64(c.LostWithinWindow)
	if !c.OldestLost.IsZero() {
		fc.maxLostAge = max(fc.maxLostAge, at.Sub(c.OldestLost))
	}
	if c.Corrupt {
		g.stats.corrupt++
	}
	g.mu.Unlock()
	if c.Corrupt {
		g.logf("CORRUPT session %s (%s): %s", s.id, where, c.Detail)
	}
	if c.LostBeyondWindow > 0 {
		g.logf("LOST session %s (%s): restored version %d, required %d, last acknowledged %d; the first lost acknowledged %d ms before",
			s.id, where, c.Restored, c.Required, c.LastAcked, at.Sub(c.OldestLost).Milliseconds())
	}
}

func isStatus(err error, status int) bool {
	var he *httpError
	return errors.As(err, &he) && he.Status == status
}

// progress prints one line a second until stop closes.
func (g *Generator) progress(stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := g.start
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			parked := 0
			for _, s := range g.sessions {
				if s.parked.Load() {
					parked++
				}
			}
			g.mu.Lock()
			rate := float64(g.stats.interval.n) / now.Sub(last).Seconds()
			p50, p99 := g.stats.interval.quantile(0.5), g.stats.interval.quantile(0.99)
			g.stats.interval.reset()
			line := fmt.Sprintf("t=%.0fs events/s=%.0f acknowledged=%d parked=%d p50_ms=%.1f p99_ms=%.1f errors=%s",
				now.Sub(g.start).Seconds(), rate, g.stats.acked, parked, ms(p50), ms(p99), FormatCounts(g.stats.errs))
			g.mu.Unlock()
			last = now
			g.logf("%s", line)
		}
	}
}

// finalCheck reads every session that takes load back from its node and
// compares it with the model.
func (g *Generator) finalCheck(ctx context.Context) {
	sem := make(chan struct{}, g.cfg.RedirectParallelism)
	var wg sync.WaitGroup
	for _, s := range g.sessions {
		if s.parked.Load() || s.broken.Load() {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.mu.Lock()
			defer s.mu.Unlock()
			n := g.nodes[s.node.Load()]
			if s.resync {
				g.resync(ctx, s, n)
			}
			rep, err := g.cl.session(ctx, n.URL, s.id, false)
			if isStatus(err, 404) && s.m.version() == 0 {
				err, rep = nil, sessionReply{}
			}
			bad := ""
			switch {
			case err != nil:
				bad = err.Error()
			case int(rep.Version) != s.m.version():
				bad = fmt.Sprintf("version %d, model %d", rep.Version, s.m.version())
			case s.m.version() > 0 && stateOf(rep).digest() != s.m.recs[s.m.version()-1].digest:
				bad = fmt.Sprintf("state at version %d differs from the model", rep.Version)
			}
			g.mu.Lock()
			g.stats.finalChecked++
			if bad != "" {
				g.stats.finalBad++
			}
			g.mu.Unlock()
			if bad != "" {
				g.logf("MISMATCH session %s on %s at the end: %s", s.id, n.Name, bad)
			}
		}()
	}
	wg.Wait()
}

func (g *Generator) report() Report {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := &g.stats
	elapsed := time.Since(g.start)
	r := Report{
		Sessions:                  len(g.sessions),
		Sent:                      st.sent,
		Acknowledged:              st.acked,
		EventP50Ms:                ms(st.latency.quantile(0.5)),
		EventP99Ms:                ms(st.latency.quantile(0.99)),
		EventsPerSec:              float64(st.acked) / elapsed.Seconds(),
		EventsPerSecBeforeFailure: float64(st.acked) / elapsed.Seconds(),
		Saturated:                 st.saturated,
		EventAdoptions:            st.eventAdoptions,
		Failed:                    append([]string(nil), st.failed...),
		Redirected:                st.redirected,
		Adopted:                   st.adopted,
		NotFound:                  st.notFound,
		Unrestored:                st.unrestored,
		LostBeyondWindow:          st.lostBeyond,
		LostWithinWindow:          st.lostWithin,
		Corrupt:                   st.corrupt,
		FinalChecked:              st.finalChecked,
		FinalMismatch:             st.finalBad,
		AdoptP50Ms:                ms(st.adopt.quantile(0.5)),
		AdoptP99Ms:                ms(st.adopt.quantile(0.99)),
		AdoptRetries:              st.adoptRetries,
		FailoverP50Ms:             ms(st.failover.quantile(0.5)),
		FailoverP99Ms:             ms(st.failover.quantile(0.99)),
		FailoverMaxMs:             ms(st.failover.max()),
		LeaseWait:                 st.leaseWait(),
		Window:                    st.window,
		Errors:                    map[string]int64{},
		Families:                  g.familyReports(),
		Elapsed:                   elapsed,
	}
	if !st.firstFailed.IsZero() {
		r.EventsPerSecBeforeFailure = float64(st.ackedAtFailure) / st.firstFailed.Sub(g.start).Seconds()
	}
	for k, v := range st.errs {
		r.Errors[k] = v
	}
	return r
}

// leaseWait is the time from the first failure (the start of its failover
// clock) to the first adoption.
func (c *counters) leaseWait() time.Duration {
	if c.firstAdopt.IsZero() || c.firstDown.IsZero() {
		return 0
	}
	return c.firstAdopt.Sub(c.firstDown)
}
