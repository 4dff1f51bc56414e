package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdover/holdover/internal/testbench/wire"
)

// Config configures a soak. The zero value of an optional field means its
// default.
type Config struct {
	// Seed fixes the fault plan and every session's stream of choices.
	// Required (the command draws one from the time and prints it).
	Seed uint64
	// Duration is how long load runs. Default 2m.
	Duration time.Duration
	// Sessions is the number of session IDs under load. Default 200.
	Sessions int
	// Rate bounds operations per second over all sessions (each session has
	// one operation in flight at most). Default 150.
	Rate float64
	// Nodes are the nodes under test, running and ready; at least 2.
	Nodes []NodeInfo
	// Keyspace is recorded in the history.
	Keyspace string
	// Kinds are the fault kinds to plan (default EpisodeKinds).
	Kinds []string
	// FlushDelay is the nodes' HOLDOVER_FLUSH_DELAY; Run checks it against
	// their GET /v1/info. Default 100ms.
	FlushDelay time.Duration
	// WindowAllowance is the flush latency allowed on top of the flush
	// delay: the durability window is their sum. Default 250ms, as the
	// loadgen's.
	WindowAllowance time.Duration
	// StallRecovery is how long after a Cassandra stall the window stays
	// suspended (reconnection, the buffer's retry backoff up to
	// HOLDOVER_RETRY_MAX, the lease's renewal). Default 6s.
	StallRecovery time.Duration
	// LeaseTTL is the nodes' HOLDOVER_LEASE_TTL. Default 3s.
	LeaseTTL time.Duration
	// NegativeCacheTTL is the nodes' HOLDOVER_NEGATIVE_CACHE_TTL: an
	// adoption answered 404 is asked again once after it. Default 2s.
	NegativeCacheTTL time.Duration
	// RequestTimeout bounds each HTTP request. Default 3s.
	RequestTimeout time.Duration
	// Warmup is the load before the first fault; GapMin..GapMax the quiet
	// time between faults. Defaults 8s, 5s, 10s.
	Warmup, GapMin, GapMax time.Duration
	// ForceLiveRatio is the share of a live session's operations that
	// force its adoption away from its live owner. Default 0.005.
	ForceLiveRatio float64
	// ForceRedirectRatio is the share of redirects away from a killed or
	// paused node that force the adoption instead of waiting for the
	// node's lease. Default 0.3.
	ForceRedirectRatio float64
	// HistoryPath is the JSON-lines history to write. Required.
	HistoryPath string
	// Progress receives a line every ProgressEvery (default 5s); nil: silent.
	Progress      io.Writer
	ProgressEvery time.Duration
	// StopTimeout bounds each node's final drain. Default 30s.
	StopTimeout time.Duration
	// Final reads a session from Cassandra after the nodes stopped (the
	// adapter's Inspector). Required. An error means it could not read.
	Final func(ctx context.Context, session string) (Observed, error)
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Duration, 2*time.Minute)
	def(&c.FlushDelay, 100*time.Millisecond)
	def(&c.WindowAllowance, 250*time.Millisecond)
	def(&c.StallRecovery, 6*time.Second)
	def(&c.LeaseTTL, 3*time.Second)
	def(&c.NegativeCacheTTL, 2*time.Second)
	def(&c.RequestTimeout, 3*time.Second)
	def(&c.Warmup, 8*time.Second)
	def(&c.GapMin, 5*time.Second)
	def(&c.GapMax, 10*time.Second)
	def(&c.ProgressEvery, 5*time.Second)
	def(&c.StopTimeout, 30*time.Second)
	if c.Sessions == 0 {
		c.Sessions = 200
	}
	if c.Rate == 0 {
		c.Rate = 150
	}
	if c.ForceLiveRatio == 0 {
		c.ForceLiveRatio = 0.005
	}
	if c.ForceRedirectRatio == 0 {
		c.ForceRedirectRatio = 0.3
	}
	if len(c.Kinds) == 0 {
		c.Kinds = EpisodeKinds
	}
	return c
}

// Validate reports every invalid field, naming it and its bound.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Seed == 0 {
		bad("Seed: required")
	}
	if len(c.Nodes) < 2 {
		bad("Nodes: at least 2, got %d", len(c.Nodes))
	}
	if c.Sessions < 1 || c.Sessions > 100_000 {
		bad("Sessions: %d is outside 1..100000", c.Sessions)
	}
	if c.Rate <= 0 || c.Rate > 10_000 {
		bad("Rate: %g is outside (0, 10000] operations/s", c.Rate)
	}
	if c.Duration <= 0 || c.Duration > 24*time.Hour {
		bad("Duration: %v is outside (0, 24h]", c.Duration)
	}
	if c.GapMin <= 0 || c.GapMax < c.GapMin {
		bad("GapMin, GapMax: need 0 < GapMin <= GapMax, got %v, %v", c.GapMin, c.GapMax)
	}
	if c.ForceLiveRatio < 0 || c.ForceLiveRatio > 0.1 || c.ForceRedirectRatio < 0 || c.ForceRedirectRatio > 1 {
		bad("ForceLiveRatio, ForceRedirectRatio: outside 0..0.1 and 0..1")
	}
	for _, k := range c.Kinds {
		if !slices.Contains(EpisodeKinds, k) {
			bad("Kinds: unknown fault kind %q (known: %s)", k, strings.Join(EpisodeKinds, ", "))
		}
	}
	if c.HistoryPath == "" {
		bad("HistoryPath: required")
	}
	if c.Final == nil {
		bad("Final: required")
	}
	return errors.Join(errs...)
}

// Summary is what a soak did and found (e2e/out/soak.json).
type Summary struct {
	Seed       uint64         `json:"seed"`
	DurationS  float64        `json:"duration_s"`
	Sessions   int            `json:"sessions"`
	Rate       float64        `json:"rate"`
	Keyspace   string         `json:"keyspace"`
	PlanDigest string         `json:"plan_digest"`
	Operations map[string]int `json:"operations"`
	Outcomes   map[string]int `json:"outcomes"`
	// Faults counts the fault episodes run, by kind; FaultSteps the
	// history's fault records by kind (a kill's restart, the final drains).
	Faults     map[string]int `json:"faults"`
	FaultSteps map[string]int `json:"fault_steps"`
	Violations map[string]int `json:"violations"`
	Examples   []Violation    `json:"examples"`
	WindowMS   int64          `json:"window_ms"`
	History    string         `json:"history"`
	// Check is the checker's full report.
	Check Report `json:"check"`
	// Error is set when the soak could not run to its end.
	Error string `json:"error,omitempty"`
}

// OK reports whether the soak ran to its end and found no violation.
func (s *Summary) OK() bool { return s.Error == "" && s.Check.OK() }

// Run drives the workload and the nemesis against running nodes for
// cfg.Duration, stops the nodes gracefully, reads every session from
// Cassandra, and checks the history it wrote (CheckHistory over the file).
// It returns an error, with what it did so far, when the soak could not be
// carried out (a node did not restart, Cassandra could not be read, ctx
// ended).
func Run(ctx context.Context, cfg Config, cl Cluster) (Summary, error) {
	cfg = cfg.withDefaults()
	sum := Summary{Seed: cfg.Seed, Sessions: cfg.Sessions, Rate: cfg.Rate, Keyspace: cfg.Keyspace,
		History: cfg.HistoryPath, WindowMS: (cfg.FlushDelay + cfg.WindowAllowance).Milliseconds()}
	if err := cfg.Validate(); err != nil {
		return sum, fmt.Errorf("soak: invalid config: %w", err)
	}
	logf := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "soak: "+format+"\n", args...)
		}
	}
	names := make([]string, len(cfg.Nodes))
	for i, n := range cfg.Nodes {
		names[i] = n.Name
	}
	plan := Plan(cfg.Seed, PlanConfig{Nodes: names, Kinds: cfg.Kinds, Warmup: cfg.Warmup, GapMin: cfg.GapMin,
		GapMax: cfg.GapMax, LeaseTTL: cfg.LeaseTTL, Count: int(cfg.Duration/(cfg.GapMin+3*time.Second)) + 2})
	sum.PlanDigest = PlanDigest(cfg.Seed, plan, cfg.Sessions)
	logf("seed %d, plan digest %s; %d sessions at %.0f operations/s for %v on %d nodes; window %v (flush delay %v + allowance %v); fault plan:\n%s",
		cfg.Seed, sum.PlanDigest, cfg.Sessions, cfg.Rate, cfg.Duration, len(cfg.Nodes),
		cfg.FlushDelay+cfg.WindowAllowance, cfg.FlushDelay, cfg.WindowAllowance, FormatPlan(plan))

	// The online checker sees every record as it is written; it feeds the
	// progress lines. The verdict comes from checking the file afterwards.
	var (
		mu     sync.Mutex
		online = NewChecker()
		ops    = map[string]int{}
		outs   = map[string]int{}
		steps  = map[string]int{}
		nops   atomic.Int64
	)
	sink := func(r Record) {
		mu.Lock()
		defer mu.Unlock()
		online.Add(r)
		switch r.Type {
		case RecOp:
			k := r.Kind
			if k == OpCreate && r.Gen > 1 {
				k = "recreate"
			}
			ops[k]++
			outs[r.Outcome]++
			nops.Add(1)
		case RecFault:
			steps[r.Kind]++
		}
	}
	hist, err := CreateHistory(cfg.HistoryPath, sink)
	if err != nil {
		return sum, fmt.Errorf("soak: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = hist.Close()
		}
	}()
	start := time.Now()
	hist.Add(Record{Type: RecMeta, Start: start, Meta: &Meta{
		Seed: cfg.Seed, Start: start, DurationMS: cfg.Duration.Milliseconds(), Sessions: cfg.Sessions, Rate: cfg.Rate,
		Keyspace: cfg.Keyspace, Nodes: cfg.Nodes, FlushDelayMS: cfg.FlushDelay.Milliseconds(),
		WindowAllowanceMS: cfg.WindowAllowance.Milliseconds(), StallRecoveryMS: cfg.StallRecovery.Milliseconds(),
		LeaseTTLMS: cfg.LeaseTTL.Milliseconds(), Plan: plan, PlanDigest: sum.PlanDigest,
	}})

	if fr, ok := cl.(FenceReporter); ok {
		fr.OnSelfFence(func(node string, at time.Time) {
			hist.Add(Record{Type: RecFault, Kind: FaultSelfFence, Node: node, Start: at, End: at, Detail: "the node logged a self-fence"})
		})
	}
	d := &driver{cfg: cfg, hist: hist, nodes: cfg.Nodes, byID: map[string]int{},
		cl: client{hc: wire.NewClient(cfg.RequestTimeout, cfg.Sessions)},
		view: &view{state: make([]nodeState, len(cfg.Nodes)), inc: make([]int, len(cfg.Nodes)),
			url: make([]string, len(cfg.Nodes)), zombie: make([]zombie, len(cfg.Nodes))}}
	for i, n := range cfg.Nodes {
		d.view.url[i] = n.URL
		d.view.zombie[i].state = nodeDown
	}
	for i, n := range cfg.Nodes {
		info, err := d.cl.info(ctx, n.URL)
		if err != nil {
			return sum, fmt.Errorf("soak: node %s: %w", n.Name, err)
		}
		if info.Node != n.ID {
			return sum, fmt.Errorf("soak: node %s at %s says it is %q, not %q", n.Name, n.URL, info.Node, n.ID)
		}
		if got := time.Duration(info.FlushDelayMS) * time.Millisecond; got != cfg.FlushDelay {
			return sum, fmt.Errorf("soak: node %s has a flush delay of %v; the window assumes %v", n.Name, got, cfg.FlushDelay)
		}
		d.byID[n.ID], d.byID[n.Name] = i, i
	}
	sessions := make([]*session, cfg.Sessions)
	for i := range sessions {
		sessions[i] = &session{id: fmt.Sprintf("soak-%04d", i), plan: newPlanner(cfg.Seed, i),
			route: rand.New(rand.NewPCG(cfg.Seed^0x726f757465, uint64(i))), owner: -1, probe: -1, createAt: -1,
			held: map[int]held{}, stale: map[int]int{}}
	}
	nem := &nemesis{cl: cl, hist: hist, view: d.view, nodes: cfg.Nodes, index: map[string]int{}, episodes: map[string]int{},
		vgen: make([]int, len(cfg.Nodes)), zombieAwake: 3 * time.Second,
		takeoverAfter: cfg.LeaseTTL / 2, takeoverFor: cfg.LeaseTTL + 2*time.Second, cl2: d.cl}
	for i, n := range cfg.Nodes {
		nem.index[n.Name] = i
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	tokens := make(chan struct{}, max(1, int(cfg.Rate/10)))
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { // one token per operation, at cfg.Rate
		defer bg.Done()
		t := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				select {
				case tokens <- struct{}{}:
				default:
				}
			}
		}
	}()
	var workers sync.WaitGroup
	for _, s := range sessions {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				select {
				case <-stop:
					return
				case <-tokens:
				}
				select {
				case <-stop:
					return
				default:
				}
				d.step(runCtx, s)
			}
		}()
	}
	nemDone := make(chan error, 1)
	go func() { nemDone <- nem.run(runCtx, plan, start.Add(cfg.Duration), cfg.LeaseTTL) }()
	progress := func() {
		mu.Lock()
		rep := online.Report()
		nf := faultEpisodes(steps)
		acked := outs[OutAck]
		mu.Unlock()
		var nodes []string
		for i, n := range cfg.Nodes {
			st, inc := d.view.get(i)
			nodes = append(nodes, fmt.Sprintf("%s:%v#%d", n.Name, st, inc))
		}
		logf("t=%.0fs ops=%d acked=%d faults=%d violations=%d (I1=%d I2=%d I3=%d I4=%d) nodes=%s",
			time.Since(start).Seconds(), nops.Load(), acked, nf,
			rep.Violations[I1]+rep.Violations[I2]+rep.Violations[I3]+rep.Violations[I4],
			rep.Violations[I1], rep.Violations[I2], rep.Violations[I3], rep.Violations[I4], strings.Join(nodes, ","))
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		t := time.NewTicker(cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				progress()
				_ = hist.Flush()
			}
		}
	}()

	var runErr error
	nemFinished := false
	select {
	case <-time.After(cfg.Duration):
	case <-ctx.Done():
		runErr = fmt.Errorf("soak: interrupted: %w", ctx.Err())
	case err := <-nemDone:
		nemFinished = true
		if err != nil {
			runErr = err
		} else {
			select { // the plan ended early: load goes on until the end
			case <-time.After(time.Until(start.Add(cfg.Duration))):
			case <-ctx.Done():
				runErr = fmt.Errorf("soak: interrupted: %w", ctx.Err())
			}
		}
	}
	if !nemFinished {
		logf("load time is up; waiting for the fault in progress to end")
		if err := <-nemDone; err != nil && runErr == nil {
			runErr = err
		}
	}
	close(stop)
	if runErr != nil {
		cancel()
	}
	workers.Wait()
	bg.Wait()
	sum.DurationS = time.Since(start).Seconds()
	progress()
	fill := func() {
		mu.Lock()
		defer mu.Unlock()
		sum.Operations, sum.Outcomes, sum.FaultSteps = maps.Clone(ops), maps.Clone(outs), maps.Clone(steps)
		sum.Faults = maps.Clone(nem.episodes)
	}
	if runErr != nil {
		fill()
		sum.Error = runErr.Error()
		sum.Check = online.Report()
		sum.Violations, sum.Examples = sum.Check.Violations, sum.Check.Examples
		return sum, runErr
	}

	logf("stopping the nodes (SIGTERM: drain, flush, release)")
	if err := nem.stopAll(cfg.StopTimeout); err != nil {
		logf("%v", err)
	}
	logf("reading %d sessions from Cassandra", len(sessions))
	for _, s := range sessions {
		var o Observed
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			if o, err = cfg.Final(ctx, s.id); err == nil || ctx.Err() != nil {
				break
			}
			sleep(ctx, time.Second)
		}
		if err != nil {
			fill()
			sum.Error = fmt.Sprintf("final read of %s: %v", s.id, err)
			return sum, fmt.Errorf("soak: %s", sum.Error)
		}
		t := time.Now()
		hist.Add(Record{Type: RecFinal, Session: s.id, Start: t, End: t, Outcome: OutObserved, Obs: &o})
	}
	closed = true
	if err := hist.Close(); err != nil {
		return sum, err
	}
	fill()

	// The verdict: the checker over the file, as anyone can run it again.
	f, err := os.Open(cfg.HistoryPath)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	rep, err := CheckHistory(f)
	if err != nil {
		return sum, fmt.Errorf("soak: check %s: %w", cfg.HistoryPath, err)
	}
	sum.Check = rep
	sum.Violations = rep.Violations
	sum.Examples = append([]Violation{}, rep.Examples[:min(len(rep.Examples), 10)]...)
	return sum, nil
}

// faultEpisodes counts, for the progress line, the faults among steps (the
// nemesis's steps by kind): the steps that do something to a node or to
// Cassandra, not those that end a fault or bring a node back.
func faultEpisodes(steps map[string]int) int {
	n := 0
	for _, k := range []string{FaultKill, FaultKillInDrain, FaultPause, FaultStall, FaultTerm, FaultPartition} {
		n += steps[k]
	}
	return n
}
