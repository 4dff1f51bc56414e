package bench

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

// FlushOurs measures the items per second the adapter persists at saturation:
// every session gets itemsPer dirty items at once and Flush waits until all are
// durable. Sessions are first created (their ownership recorded, a one-time
// lightweight transaction each, not measured), then `passes` update passes are
// timed; the median pass is returned.
func (e *Env) FlushOurs(ctx context.Context, prefix string, sessions, itemsPer, concurrency, passes int) (float64, error) {
	cfg := e.config("bench-" + prefix)
	cfg.FlushConcurrency = concurrency
	cfg.FlushDelay = 5 * time.Millisecond
	a, err := adapter.Open(ctx, cfg, quiet())
	if err != nil {
		return 0, err
	}
	defer a.Close(context.WithoutCancel(ctx))
	changes := make([]adapter.Change, itemsPer)
	for i := range changes {
		changes[i] = adapter.Change{Key: fmt.Sprintf("k%d", i), Value: value}
	}
	commitAll := func() error {
		for s := 0; s < sessions; s++ {
			if err := a.Commit(fmt.Sprintf("%s-%d", prefix, s), changes...); err != nil {
				return err
			}
		}
		return a.Flush(ctx)
	}
	began := time.Now()
	if err := commitAll(); err != nil {
		return 0, err
	}
	e.logf("  %s: %d sessions created in %s (ownership recorded once per session)", prefix, sessions, time.Since(began).Round(time.Millisecond))
	var rates []float64
	for p := 0; p < passes; p++ {
		began := time.Now()
		if err := commitAll(); err != nil {
			return 0, err
		}
		r := float64(sessions*itemsPer) / time.Since(began).Seconds()
		rates = append(rates, r)
		e.logf("  %s pass %d: %.0f items/s (flush concurrency %d)", prefix, p+1, r, concurrency)
	}
	if st := a.Stats().Buffer; st.Drops > 0 || st.Retries > 0 {
		e.logf("  %s: %d retries, %d drops", prefix, st.Retries, st.Drops)
	}
	return median(rates), nil
}

// FlushRaw is the anchor: a plain gocql writer inserting the same rows
// (prepared, token-aware, explicit timestamp and TTL, idempotent) from
// `goroutines` goroutines. It returns rows per second, the median of passes.
func (e *Env) FlushRaw(ctx context.Context, prefix string, sessions, itemsPer, goroutines, passes int) (float64, error) {
	s, err := e.cluster().CreateSession()
	if err != nil {
		return 0, err
	}
	defer s.Close()
	stmt := fmt.Sprintf(`INSERT INTO %s.raw_state (session, key, value, format) VALUES (?, ?, ?, ?) USING TIMESTAMP ? AND TTL ?`, e.Keyspace)
	keys := make([]string, itemsPer)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	total := sessions * itemsPer
	var rates []float64
	for p := 0; p < passes+1; p++ { // the first pass warms the connections and the statement
		var (
			next  atomic.Int64
			wg    sync.WaitGroup
			first atomic.Value
		)
		ts := time.Now().UnixMicro()
		began := time.Now()
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= total {
						return
					}
					sess := fmt.Sprintf("%s-%d", prefix, i/itemsPer)
					err := s.Query(stmt, sess, keys[i%itemsPer], value, int8(1), ts, 604800).
						Idempotent(true).Consistency(gocql.LocalQuorum).WithContext(ctx).Exec()
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
		if p == 0 {
			continue
		}
		r := float64(total) / time.Since(began).Seconds()
		rates = append(rates, r)
		e.logf("  raw %s pass %d: %.0f rows/s (%d goroutines)", prefix, p, r, goroutines)
	}
	return median(rates), nil
}
