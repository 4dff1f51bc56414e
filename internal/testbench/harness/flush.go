package harness

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/adapter"
)

// value is the 100-byte value every throughput benchmark writes.
var value = []byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz!?")

// writer is one contestant of the throughput comparison: pass writes every
// row once and returns rows per second.
type writer interface {
	name() string
	pass(ctx context.Context) (float64, error)
	close()
}

// FlushCompare measures the rows per second the adapter persists at
// saturation (every session gets itemsPer dirty items at once; Flush waits
// until all are durable) beside a tuned plain gocql writer inserting the same
// rows. Each flush concurrency of the adapter and each goroutine count of the
// anchor is a contestant; their passes alternate, so all share the machine's
// noise. It returns each side's best median.
func (e *Env) FlushCompare(ctx context.Context, prefix string, sessions, itemsPer, passes int, concurrency, goroutines []int) (ours, raw float64, err error) {
	var ws []writer
	defer func() {
		for _, w := range ws {
			w.close()
		}
	}()
	for _, c := range concurrency {
		w, err := e.newOurs(ctx, fmt.Sprintf("%s-c%d", prefix, c), sessions, itemsPer, c)
		if err != nil {
			return 0, 0, err
		}
		ws = append(ws, w)
	}
	for _, g := range goroutines {
		w, err := e.newRaw(ctx, fmt.Sprintf("%s-raw-g%d", prefix, g), sessions, itemsPer, g)
		if err != nil {
			return 0, 0, err
		}
		ws = append(ws, w)
	}
	rates := make([][]float64, len(ws))
	for p := 0; p < passes; p++ {
		for i, w := range ws {
			r, err := w.pass(ctx)
			if err != nil {
				return 0, 0, err
			}
			rates[i] = append(rates[i], r)
			e.logf("  %s pass %d: %.0f rows/s", w.name(), p+1, r)
		}
	}
	for i := range ws {
		m := median(rates[i])
		if i < len(concurrency) {
			ours = max(ours, m)
		} else {
			raw = max(raw, m)
		}
	}
	return ours, raw, nil
}

type oursWriter struct {
	a        *adapter.Adapter
	prefix   string
	sessions int
	changes  []adapter.Change
	conc     int
	fences   uint64 // self-fences already reported
}

// newOurs opens an adapter with the given flush concurrency and creates its
// sessions (recording their ownership is a one-time lightweight transaction
// per session, not part of any pass).
func (e *Env) newOurs(ctx context.Context, prefix string, sessions, itemsPer, conc int) (*oursWriter, error) {
	cfg := e.config("bench-" + prefix)
	cfg.FlushConcurrency = conc
	cfg.FlushDelay = 5 * time.Millisecond
	a, err := adapter.Open(ctx, cfg, quiet())
	if err != nil {
		return nil, err
	}
	w := &oursWriter{a: a, prefix: prefix, sessions: sessions, conc: conc, changes: make([]adapter.Change, itemsPer)}
	for i := range w.changes {
		w.changes[i] = adapter.Change{Key: fmt.Sprintf("k%d", i), Value: value}
	}
	began := time.Now()
	if _, err := w.pass(ctx); err != nil {
		w.close()
		return nil, err
	}
	e.logf("  %s: %d sessions created in %s", prefix, sessions, time.Since(began).Round(time.Millisecond))
	return w, nil
}

func (w *oursWriter) name() string { return fmt.Sprintf("holdover (flush concurrency %d)", w.conc) }

func (w *oursWriter) pass(ctx context.Context) (float64, error) {
	began := time.Now()
	for s := 0; s < w.sessions; s++ {
		if err := w.a.Commit(fmt.Sprintf("%s-%d", w.prefix, s), w.changes...); err != nil {
			return 0, err
		}
	}
	// A pass takes seconds; one that takes minutes is stuck, and says how.
	fctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	err := w.a.Flush(fctx)
	cancel()
	if err != nil {
		st := w.a.Stats()
		return 0, fmt.Errorf("%s: flush: %w (pending sessions %d, paused %v, fenced %v, self-fences %d, renewal failures %d)", w.name(), err,
			st.Buffer.PendingSessions, st.Buffer.Paused, st.Residency.Fenced, st.Residency.Fences, st.Residency.RenewFailures)
	}
	st := w.a.Stats()
	if st.Buffer.Drops > 0 {
		return 0, fmt.Errorf("%d snapshots dropped", st.Buffer.Drops)
	}
	if st.Residency.Fences > w.fences {
		fmt.Printf("bench:   %s self-fenced %d times (lease renewals failed %d times)\n", w.name(), st.Residency.Fences-w.fences, st.Residency.RenewFailures)
		w.fences = st.Residency.Fences
	}
	return float64(w.sessions*len(w.changes)) / time.Since(began).Seconds(), nil
}

func (w *oursWriter) close() { _, _ = w.a.Close(context.Background()) }

type rawWriter struct {
	s          *gocql.Session
	stmt       string
	prefix     string
	keys       []string
	sessions   int
	goroutines int
}

// newRaw is the anchor: a plain gocql writer inserting the same rows into a
// table of the same shape (prepared, token-aware, explicit timestamp and TTL,
// idempotent) from `goroutines` goroutines. A first pass warms it.
func (e *Env) newRaw(ctx context.Context, prefix string, sessions, itemsPer, goroutines int) (*rawWriter, error) {
	s, err := e.cluster().CreateSession()
	if err != nil {
		return nil, err
	}
	w := &rawWriter{s: s, prefix: prefix, sessions: sessions, goroutines: goroutines, keys: make([]string, itemsPer),
		stmt: fmt.Sprintf(`INSERT INTO %s.raw_state (session, key, value, format) VALUES (?, ?, ?, ?) USING TIMESTAMP ? AND TTL ?`, e.Keyspace)}
	for i := range w.keys {
		w.keys[i] = fmt.Sprintf("k%d", i)
	}
	if _, err := w.pass(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return w, nil
}

func (w *rawWriter) name() string { return fmt.Sprintf("raw gocql (%d goroutines)", w.goroutines) }

func (w *rawWriter) pass(ctx context.Context) (float64, error) {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		first atomic.Value
	)
	total := w.sessions * len(w.keys)
	ts := time.Now().UnixMicro()
	began := time.Now()
	for g := 0; g < w.goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				sess := fmt.Sprintf("%s-%d", w.prefix, i/len(w.keys))
				err := w.s.Query(w.stmt, sess, w.keys[i%len(w.keys)], value, int8(1), ts, 604800).
					Idempotent(true).Consistency(gocql.LocalQuorum).ExecContext(ctx)
				if err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		return 0, err
	}
	return float64(total) / time.Since(began).Seconds(), nil
}

func (w *rawWriter) close() { w.s.Close() }
