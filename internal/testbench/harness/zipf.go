package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/holdover/holdover/adapter"
)

// WritesResult compares the writes the adapter issued with the minimum.
type WritesResult struct {
	Commits, Issued, Minimum int
	// Edge counts commits whose window timing cannot tell: a snapshot of
	// their session was taken while Commit ran. Each is counted in the
	// earlier window, so Minimum may differ from the truth by up to Edge.
	Edge int
}

// Writes runs a Zipf-skewed workload of single-change commits over `sessions`
// sessions of 16 keys for `d`, at `rate` commits per second, and counts the
// items the adapter wrote against the minimum: the commits of each session
// are cut into the windows its flushes closed (a commit belongs to the first
// snapshot of its session taken after it), and each window needs one
// write per distinct key it saw.
func (e *Env) Writes(ctx context.Context, sessions int, rate float64, d time.Duration) (WritesResult, error) {
	cfg := e.config("bench-zipf")
	var (
		mu      sync.Mutex
		flushes = map[string][]time.Time{} // session -> when each flushed snapshot was taken
	)
	a, err := adapter.Open(ctx, cfg, quiet(), adapter.WithHooks(adapter.Hooks{OnFlushed: func(ev adapter.FlushEvent) {
		if ev.Err != nil {
			return
		}
		mu.Lock()
		flushes[ev.Session] = append(flushes[ev.Session], ev.Taken)
		mu.Unlock()
	}}))
	if err != nil {
		return WritesResult{}, err
	}
	defer a.Close(context.WithoutCancel(ctx))
	type ev struct {
		at, done time.Time // Commit called, Commit returned
		key      uint8
	}
	history := make([][]ev, sessions)
	rng := rand.New(rand.NewPCG(1, 2))
	zs := rand.NewZipf(rng, 1.2, 1, uint64(sessions-1))
	zk := rand.NewZipf(rng, 1.1, 1, 15)
	keys := make([]string, 16)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
	}
	before := a.Stats().Buffer.FlushedItems
	commits, err := paced(d, rate, func(int) error {
		s, k := int(zs.Uint64()), uint8(zk.Uint64())
		id := fmt.Sprintf("zipf-%d", s)
		at := time.Now()
		err := a.Commit(id, adapter.Change{Key: keys[k], Value: value})
		history[s] = append(history[s], ev{at, time.Now(), k})
		return err
	})
	if err != nil {
		return WritesResult{}, err
	}
	if err := a.Flush(ctx); err != nil {
		return WritesResult{}, err
	}
	res := WritesResult{Commits: commits, Issued: int(a.Stats().Buffer.FlushedItems - before)}
	mu.Lock()
	defer mu.Unlock()
	for s, h := range history {
		starts := flushes[fmt.Sprintf("zipf-%d", s)]
		w, seen := 0, uint16(0)
		for _, x := range h {
			for w < len(starts) && !starts[w].After(x.at) {
				w, seen = w+1, 0 // that snapshot was taken: later commits go to the next window
			}
			if w < len(starts) && starts[w].Before(x.done) {
				res.Edge++ // taken while this Commit ran
			}
			if seen&(1<<x.key) == 0 {
				seen |= 1 << x.key
				res.Minimum++
			}
		}
	}
	return res, nil
}
