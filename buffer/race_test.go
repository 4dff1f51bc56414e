package buffer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentCommits runs many committing goroutines against a real clock with a
// short Delay, flushes failing now and then, and concurrent Flush, Stats and Pending
// calls. Each goroutine owns its keys (in shared sessions) and one session it ends, so
// the last committed state is defined; after a final Flush the store must hold it.
func TestConcurrentCommits(t *testing.T) {
	for _, grouped := range []bool{false, true} {
		t.Run(fmt.Sprint("grouped=", grouped), func(t *testing.T) { concurrentCommits(t, grouped) })
	}
}

func concurrentCommits(t *testing.T, grouped bool) {
	var st store
	var mu sync.Mutex
	inflight := map[string]bool{}
	lastSeq := map[string]uint64{}
	var overlaps, seqBad atomic.Int64
	flush := func(ctx context.Context, s *Snapshot) error {
		mu.Lock()
		if inflight[s.Session] {
			overlaps.Add(1)
		}
		inflight[s.Session] = true
		if s.Part == 1 && s.Seq <= lastSeq[s.Session] {
			seqBad.Add(1)
		}
		lastSeq[s.Session] = s.Seq
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(inflight, s.Session)
			mu.Unlock()
		}()
		if rand.IntN(10) == 0 {
			return errors.New("transient")
		}
		cp := *s
		cp.Items = slices.Clone(s.Items)
		st.apply(&cp) // apply clones values
		return nil
	}
	cfg := Config{
		Delay:           time.Millisecond,
		RetryMin:        time.Millisecond,
		RetryMax:        4 * time.Millisecond,
		Concurrency:     4,
		MaxSessionItems: 16,
		MaxBatchBytes:   2 << 10,
	}
	if grouped { // with families too, so that groups mix them
		cfg.Families = []Family{{Name: "s1", Prefix: "s1", Delay: 3 * time.Millisecond}, {Name: "own", Prefix: "own", Delay: 2 * time.Millisecond}}
		cfg.Concurrency = 2
		cfg.GroupMax = 4
		cfg.GroupBytes = 2 << 10
		cfg.GroupFlush = func(ctx context.Context, group []*Snapshot, errs []error) {
			for i, s := range group {
				errs[i] = flush(ctx, s)
			}
		}
	}
	b, err := New(cfg, flush)
	if err != nil {
		t.Fatal(err)
	}

	const goroutines, commits, sessions = 8, 3000, 16
	type key struct{ session, key string }
	final := make([]map[key]string, goroutines) // "" = absent
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(g), 3))
			last := map[key]string{}
			own := fmt.Sprint("own", g)
			val := make([]byte, 0, 256)
			for i := range commits {
				session := fmt.Sprint("s", rnd.IntN(sessions))
				if rnd.IntN(4) == 0 {
					session = own
				}
				if session == own && rnd.IntN(50) == 0 {
					if err := b.End(own); err != nil {
						t.Error(err)
						return
					}
					for k := range last {
						if k.session == own {
							last[k] = ""
						}
					}
					continue
				}
				var cs []Change
				for range 1 + rnd.IntN(3) {
					k := fmt.Sprint("g", g, "-k", rnd.IntN(8))
					if rnd.IntN(5) == 0 {
						cs = append(cs, Change{Key: k, Delete: true})
						last[key{session, k}] = ""
						continue
					}
					val = fmt.Appendf(val[:0], "%d-%d-", g, i)
					val = append(val, bytes.Repeat([]byte{'x'}, rnd.IntN(200))...)
					cs = append(cs, Change{Key: k, Value: val}) // val is reused: Commit must copy
					last[key{session, k}] = string(val)
				}
				if err := b.Commit(session, cs...); err != nil {
					t.Error(err)
					return
				}
			}
			final[g] = last
		}()
	}
	var side sync.WaitGroup
	side.Add(1)
	go func() { // concurrent readers and Flush calls
		defer side.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
			b.Flush(ctx)
			cancel()
			b.Stats()
			b.Pending("s1")
		}
	}()
	wg.Wait()
	close(stop)
	side.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := b.Close(ctx); err != nil || len(r.Sessions) != 0 {
		t.Fatalf("Close: %v %+v", err, r)
	}
	if overlaps.Load() != 0 || seqBad.Load() != 0 {
		t.Errorf("%d overlapping flushes, %d Seq regressions", overlaps.Load(), seqBad.Load())
	}
	stats := b.Stats()
	if grouped && stats.Groups == 0 {
		t.Error("no GroupFlush call")
	}
	if stats.PendingBytes != 0 || stats.PendingItems != 0 || stats.Commits+stats.Ends != goroutines*commits {
		t.Errorf("stats %+v", stats)
	}
	for _, last := range final {
		for k, want := range last {
			if got := st.read(k.session)[k.key]; got != want {
				t.Errorf("%v: stored %.30q, last committed %.30q", k, got, want)
			}
		}
	}
	t.Logf("%+v", stats)
}
