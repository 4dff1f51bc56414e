package harness

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/holdover/holdover/adapter"
)

// RPOResult is the largest observed age of an unflushed change and its bound.
type RPOResult struct {
	MaxMS, BoundMS, FlushP99MS, DelayMS float64
	FlushP50MS, FlushMaxMS              float64
	Rate                                float64

	// FlushStartLateP99MS and FlushStartLateMaxMS are how late the flushes
	// of the run started: each write's start (the flush call) after its due
	// time (its oldest change's commit plus the flush delay), 0 for one that
	// started early, over every write that finished while the load ran.
	FlushStartLateP99MS, FlushStartLateMaxMS float64
	// HeldStarts counts the late starts that began as the session's
	// previous write landed (within heldGap): a session has one write in
	// flight at a time, so a change due during a write waits for it.
	// HeldStartLate* are their lateness, FreeStartLate* the lateness of
	// every other start (the scheduler's and the workers').
	HeldStarts                             int
	HeldStartLateP99MS, HeldStartLateMaxMS float64
	FreeStartLateP99MS, FreeStartLateMaxMS float64

	// Where the largest window any write closed came from: how long after
	// its due time (first change + delay) the write started, and how long
	// it took.
	WorstLateMS, WorstFlightMS float64
	// SchedP99MS and SchedMaxMS are the Go runtime's scheduling latency
	// during the run: how long this process's goroutines waited, runnable,
	// for a core (the scheduler and the flush workers among them).
	SchedP99MS, SchedMaxMS float64
	// CPUPressurePct is the share of the run during which some task on the
	// machine waited for a CPU (Linux pressure stall information); nil
	// where the kernel does not report it.
	CPUPressurePct *float64
}

// heldGap is how soon after a session's previous write landed a write must
// start to count as having waited for it.
const heldGap = 2 * time.Millisecond

// RPO commits at `rate` single-item commits per second (half the measured
// saturation) over a pool of sessions for `d`, samples the age of the oldest
// unflushed change every 5 ms, and reports its maximum beside the bound: the
// flush delay plus twice the p99 flush latency observed in the same run.
func (e *Env) RPO(ctx context.Context, rate float64, d time.Duration) (RPOResult, error) {
	book := &rpoBook{landed: map[string]time.Time{}}
	cfg := e.config("bench-rpo")
	cfg.FlushConcurrency = 512 // as in the saturation run the load is half of
	a, err := adapter.Open(ctx, cfg, quiet(), adapter.WithHooks(adapter.Hooks{OnFlushed: func(ev adapter.FlushEvent) {
		book.add(ev, time.Now())
	}}))
	if err != nil {
		return RPOResult{}, err
	}
	defer a.Close(context.WithoutCancel(ctx))
	pool := max(int(rate/5), 100) // each session is committed to about 5 times a second
	// Sessions of this run's own: a second run (make bench runs two) under
	// the same node ID must create new sessions, not commit over the state
	// the first stored (a create over this node's own stored state is
	// refused: adopt it first).
	prefix := fmt.Sprintf("rpo-%d-", time.Now().UnixNano())
	for s := 0; s < pool; s++ { // create the sessions first: the window is measured in steady state
		if err := a.Commit(prefix+strconv.Itoa(s), adapter.Change{Key: "k", Value: value}); err != nil {
			return RPOResult{}, err
		}
	}
	if err := a.Flush(ctx); err != nil {
		return RPOResult{}, err
	}
	book.reset()

	var maxAge time.Duration
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				maxAge = max(maxAge, a.Stats().Buffer.OldestPendingAge)
			}
		}
	}()
	before := a.Stats().Buffer
	sched := readSched()
	pressure, havePressure := cpuPressure()
	began := time.Now()
	_, err = paced(d, rate, func(i int) error {
		return a.Commit(prefix+strconv.Itoa(i%pool), adapter.Change{Key: "k", Value: value})
	})
	if err != nil {
		close(stop)
		return RPOResult{}, err
	}
	// The final Flush starts what is pending at once, before it is due:
	// every figure (the largest age, the flight p99 of the bound, the
	// lateness of starts, the worst write) counts the writes that finished
	// during the load, and the sampler stops with it. (The bound's p99 and
	// the largest age took in the final Flush's burst too, which landed on
	// the p99 rank and loosened the bound; found by review.)
	close(stop)
	<-sampled
	ran := book.freeze()
	after := a.Stats().Buffer
	if writes := after.Flushes - before.Flushes; writes > 0 {
		grouped := after.Grouped - before.Grouped
		requests := after.Groups - before.Groups + writes - grouped
		e.logf("  window: %d writes in %d requests to Cassandra (%.1f sessions a request)", writes, requests, float64(writes)/float64(requests))
	}
	if err := a.Flush(ctx); err != nil {
		return RPOResult{}, err
	}
	// A run whose writes failed measured nothing: say so rather than report
	// figures of no writes (a run whose creations were all refused once
	// showed a largest age of 5 s beside a bound of the delay alone).
	if dropped := a.Stats().Buffer.Drops - before.Drops; dropped > 0 || ran == 0 {
		return RPOResult{}, fmt.Errorf("window run: %d writes finished during the load, %d dropped", ran, dropped)
	}
	res := RPOResult{Rate: rate}
	res.SchedP99MS, res.SchedMaxMS = schedSince(sched)
	if p, ok := cpuPressure(); ok && havePressure {
		pct := 100 * float64(p-pressure) / float64(time.Since(began))
		res.CPUPressurePct = &pct
		e.logf("  window: some task on the machine waited for a CPU %.0f%% of the time", pct)
	}
	e.logf("  window: goroutines of this process waited for a core p99 %.1f ms, at most %.1f ms", res.SchedP99MS, res.SchedMaxMS)
	delay := ms(cfg.FlushDelay)
	p50, p99, pmax, s50, s99, smax := book.figures(&res, delay)
	e.logf("  window: largest unflushed age %.1f ms; flush latency p50 %.1f, p99 %.1f, max %.1f ms; age at flush start p50 %.1f, p99 %.1f, max %.1f ms; delay %.0f ms",
		ms(maxAge), p50, p99, pmax, s50, s99, smax, delay)
	e.logf("  window: the %d writes of the load started past their due time by p99 %.1f ms, at most %.1f ms", ran, res.FlushStartLateP99MS, res.FlushStartLateMaxMS)
	e.logf("  window: %d of them started late as the session's previous write landed (one write per session at a time): past due p99 %.1f, max %.1f ms; the others p99 %.1f, max %.1f ms",
		res.HeldStarts, res.HeldStartLateP99MS, res.HeldStartLateMaxMS, res.FreeStartLateP99MS, res.FreeStartLateMaxMS)
	e.logf("  window: the largest window a write closed began %.1f ms after its due time and flew %.1f ms", res.WorstLateMS, res.WorstFlightMS)
	res.MaxMS, res.BoundMS, res.FlushP50MS, res.FlushP99MS, res.FlushMaxMS, res.DelayMS = ms(maxAge), delay+2*p99, p50, p99, pmax, delay
	return res, nil
}

// rpoBook keeps what the window step's writes report (OnFlushed): each
// write's flight, its oldest change's age when it started, whether it
// started as the session's previous write landed, and the write that closed
// the largest window. freeze marks the end of the load: the figures count
// the writes that finished before it, not the final Flush's, which starts
// everything pending at once (its burst landed on the flight p99's rank and
// loosened the bound, and its writes were taken for the worst; found by
// review).
type rpoBook struct {
	mu        sync.Mutex
	latencies []float64
	starts    []float64 // age of the oldest change when its flush began
	held      []bool    // whether that flush began as the session's previous write landed
	landed    map[string]time.Time
	worst     adapter.FlushEvent // the write that closed the largest window during the load
	ran       int                // writes of the load, once frozen; -1 before
}

// add records a write that ended at end. A failed attempt closed no window
// (its retry does): it is not counted.
func (b *rpoBook) add(ev adapter.FlushEvent, end time.Time) {
	if ev.Err != nil {
		return
	}
	start := end.Add(-ev.Duration)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.latencies = append(b.latencies, ms(ev.Duration))
	b.starts = append(b.starts, ms(ev.Lag-ev.Duration))
	prev, ok := b.landed[ev.Session]
	b.held = append(b.held, ok && start.Sub(prev) < heldGap)
	b.landed[ev.Session] = end
	if b.ran < 0 && ev.Lag > b.worst.Lag {
		b.worst = ev
	}
}

// reset forgets the writes so far (those that created the sessions).
func (b *rpoBook) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.latencies, b.starts, b.held = b.latencies[:0], b.starts[:0], b.held[:0]
	b.worst, b.ran = adapter.FlushEvent{}, -1
}

// freeze ends the load and returns how many writes it made.
func (b *rpoBook) freeze() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ran = len(b.starts)
	return b.ran
}

// figures fills res's lateness and worst-write figures from the load's
// writes, and returns their flight p50, p99, max and start-age p50, p99,
// max (ms).
func (b *rpoBook) figures(res *RPOResult, delay float64) (p50, p99, pmax, s50, s99, smax float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	lat, starts := b.latencies[:b.ran], b.starts[:b.ran]
	p50, p99, pmax = percentile(lat, 50), percentile(lat, 99), percentile(lat, 100)
	s50, s99, smax = percentile(starts, 50), percentile(starts, 99), percentile(starts, 100)
	res.WorstFlightMS = ms(b.worst.Duration)
	res.WorstLateMS = ms(b.worst.Lag-b.worst.Duration) - delay
	// A start's lateness is its age at the start less the delay: the same
	// order, so the same percentiles.
	res.FlushStartLateP99MS, res.FlushStartLateMaxMS = max(0, s99-delay), max(0, smax-delay)
	var free, behind []float64
	for i, a := range starts {
		if b.held[i] && a > delay+ms(heldGap) {
			behind = append(behind, a-delay)
		} else {
			free = append(free, max(0, a-delay))
		}
	}
	res.HeldStarts = len(behind)
	res.FreeStartLateP99MS, res.FreeStartLateMaxMS = percentile(free, 99), percentile(free, 100)
	res.HeldStartLateP99MS, res.HeldStartLateMaxMS = percentile(behind, 99), percentile(behind, 100)
	return p50, p99, pmax, s50, s99, smax
}
