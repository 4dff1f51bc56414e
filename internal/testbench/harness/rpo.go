package harness

import (
	"context"
	"fmt"
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
	var (
		mu        sync.Mutex
		latencies []float64
		starts    []float64 // age of the oldest change when its flush began
		held      []bool    // whether that flush began as the session's previous write landed
		landed    = map[string]time.Time{}
		worst     adapter.FlushEvent // the write that closed the largest window
	)
	cfg := e.config("bench-rpo")
	cfg.FlushConcurrency = 512 // as in the saturation run the load is half of
	a, err := adapter.Open(ctx, cfg, quiet(), adapter.WithHooks(adapter.Hooks{OnFlushed: func(ev adapter.FlushEvent) {
		end := time.Now()
		start := end.Add(-ev.Duration)
		mu.Lock()
		latencies = append(latencies, ms(ev.Duration))
		starts = append(starts, ms(ev.Lag-ev.Duration))
		prev, ok := landed[ev.Session]
		held = append(held, ok && start.Sub(prev) < heldGap)
		landed[ev.Session] = end
		if ev.Lag > worst.Lag {
			worst = ev
		}
		mu.Unlock()
	}}))
	if err != nil {
		return RPOResult{}, err
	}
	defer a.Close(context.WithoutCancel(ctx))
	pool := max(int(rate/5), 100) // each session is committed to about 5 times a second
	for s := 0; s < pool; s++ {   // create the sessions first: the window is measured in steady state
		if err := a.Commit(fmt.Sprintf("rpo-%d", s), adapter.Change{Key: "k", Value: value}); err != nil {
			return RPOResult{}, err
		}
	}
	if err := a.Flush(ctx); err != nil {
		return RPOResult{}, err
	}
	mu.Lock()
	latencies = latencies[:0]
	starts = starts[:0]
	held = held[:0]
	worst = adapter.FlushEvent{}
	mu.Unlock()

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
		return a.Commit(fmt.Sprintf("rpo-%d", i%pool), adapter.Change{Key: "k", Value: value})
	})
	if err != nil {
		close(stop)
		return RPOResult{}, err
	}
	// The final Flush starts what is pending at once, before it is due: the
	// lateness of starts counts the writes that finished during the load.
	mu.Lock()
	ran := len(starts)
	mu.Unlock()
	after := a.Stats().Buffer
	if writes := after.Flushes - before.Flushes; writes > 0 {
		grouped := after.Grouped - before.Grouped
		requests := after.Groups - before.Groups + writes - grouped
		e.logf("  window: %d writes in %d requests to Cassandra (%.1f sessions a request)", writes, requests, float64(writes)/float64(requests))
	}
	if err := a.Flush(ctx); err != nil {
		close(stop)
		return RPOResult{}, err
	}
	close(stop)
	<-sampled
	res := RPOResult{Rate: rate}
	res.SchedP99MS, res.SchedMaxMS = schedSince(sched)
	if p, ok := cpuPressure(); ok && havePressure {
		pct := 100 * float64(p-pressure) / float64(time.Since(began))
		res.CPUPressurePct = &pct
		e.logf("  window: some task on the machine waited for a CPU %.0f%% of the time", pct)
	}
	e.logf("  window: goroutines of this process waited for a core p99 %.1f ms, at most %.1f ms", res.SchedP99MS, res.SchedMaxMS)
	mu.Lock()
	p50, p99, pmax := percentile(latencies, 50), percentile(latencies, 99), percentile(latencies, 100)
	s50, s99, smax := percentile(starts, 50), percentile(starts, 99), percentile(starts, 100)
	delay := ms(cfg.FlushDelay)
	res.WorstFlightMS = ms(worst.Duration)
	res.WorstLateMS = ms(worst.Lag-worst.Duration) - delay
	// A start's lateness is its age at the start less the delay: the same
	// order, so the same percentiles.
	l99, lmax := percentile(starts[:ran], 99), percentile(starts[:ran], 100)
	res.FlushStartLateP99MS, res.FlushStartLateMaxMS = max(0, l99-delay), max(0, lmax-delay)
	var free, behind []float64
	for i, a := range starts[:ran] {
		if held[i] && a > delay+ms(heldGap) {
			behind = append(behind, a-delay)
		} else {
			free = append(free, max(0, a-delay))
		}
	}
	res.HeldStarts = len(behind)
	res.FreeStartLateP99MS, res.FreeStartLateMaxMS = percentile(free, 99), percentile(free, 100)
	res.HeldStartLateP99MS, res.HeldStartLateMaxMS = percentile(behind, 99), percentile(behind, 100)
	mu.Unlock()
	e.logf("  window: largest unflushed age %.1f ms; flush latency p50 %.1f, p99 %.1f, max %.1f ms; age at flush start p50 %.1f, p99 %.1f, max %.1f ms; delay %.0f ms",
		ms(maxAge), p50, p99, pmax, s50, s99, smax, delay)
	e.logf("  window: the %d writes of the load started past their due time by p99 %.1f ms, at most %.1f ms", ran, res.FlushStartLateP99MS, res.FlushStartLateMaxMS)
	e.logf("  window: %d of them started late as the session's previous write landed (one write per session at a time): past due p99 %.1f, max %.1f ms; the others p99 %.1f, max %.1f ms",
		res.HeldStarts, res.HeldStartLateP99MS, res.HeldStartLateMaxMS, res.FreeStartLateP99MS, res.FreeStartLateMaxMS)
	e.logf("  window: the largest window a write closed began %.1f ms after its due time and flew %.1f ms", res.WorstLateMS, res.WorstFlightMS)
	res.MaxMS, res.BoundMS, res.FlushP50MS, res.FlushP99MS, res.FlushMaxMS, res.DelayMS = ms(maxAge), delay+2*p99, p50, p99, pmax, delay
	return res, nil
}
