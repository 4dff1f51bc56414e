package bench

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
}

// RPO commits at `rate` single-item commits per second (half the measured
// saturation) over a pool of sessions for `d`, samples the age of the oldest
// unflushed change every 5 ms, and reports its maximum beside the bound: the
// flush delay plus twice the p99 flush latency observed in the same run.
func (e *Env) RPO(ctx context.Context, rate float64, d time.Duration) (RPOResult, error) {
	var (
		mu        sync.Mutex
		latencies []float64
		starts    []float64 // age of the oldest change when its flush began
	)
	cfg := e.config("bench-rpo")
	cfg.FlushConcurrency = 512 // as in the saturation run the load is half of
	a, err := adapter.Open(ctx, cfg, quiet(), adapter.WithHooks(adapter.Hooks{OnFlushed: func(ev adapter.FlushEvent) {
		mu.Lock()
		latencies = append(latencies, ms(ev.Duration))
		starts = append(starts, ms(ev.Lag-ev.Duration))
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
	mu.Unlock()

	var maxAge, oversleep time.Duration
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
	// How late this process's own timers fire: what the machine takes from
	// the scheduler, which must wake to start each flush.
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			t0 := time.Now()
			time.Sleep(time.Millisecond)
			oversleep = max(oversleep, time.Since(t0)-time.Millisecond)
		}
	}()
	_, err = paced(d, rate, func(i int) error {
		return a.Commit(fmt.Sprintf("rpo-%d", i%pool), adapter.Change{Key: "k", Value: value})
	})
	if err != nil {
		close(stop)
		return RPOResult{}, err
	}
	if err := a.Flush(ctx); err != nil {
		close(stop)
		return RPOResult{}, err
	}
	close(stop)
	<-sampled
	<-probed
	e.logf("  window: a 1 ms sleep of this process overslept by up to %.1f ms", ms(oversleep))
	mu.Lock()
	p50, p99, pmax := percentile(latencies, 50), percentile(latencies, 99), percentile(latencies, 100)
	s50, s99, smax := percentile(starts, 50), percentile(starts, 99), percentile(starts, 100)
	mu.Unlock()
	delay := ms(cfg.FlushDelay)
	e.logf("  window: largest unflushed age %.1f ms; flush latency p50 %.1f, p99 %.1f, max %.1f ms; age at flush start p50 %.1f, p99 %.1f, max %.1f ms; delay %.0f ms",
		ms(maxAge), p50, p99, pmax, s50, s99, smax, delay)
	return RPOResult{MaxMS: ms(maxAge), BoundMS: delay + 2*p99, FlushP50MS: p50, FlushP99MS: p99, FlushMaxMS: pmax, DelayMS: delay, Rate: rate}, nil
}
