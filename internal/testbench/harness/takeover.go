package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// TakeoverResult is a bulk takeover beside the bare claims of as many
// sessions.
type TakeoverResult struct {
	Sessions    int
	Concurrency int
	// OursPerS is sessions adopted per second by Manager.Takeover, timed from
	// its call to its return; Ours is that time.
	OursPerS float64
	Ours     time.Duration
	// RawPerS is ownership claims per second issued directly with gocql; Raw
	// is the time they took.
	RawPerS float64
	Raw     time.Duration
}

// Dead owners of the takeover run: nodes with ownership rows and index
// entries but no lease.
const (
	takeoverGhost = "ghost"      // the node Takeover takes over
	rawGhost      = "ghost-raw"  // the anchor's sessions
	warmGhost     = "ghost-warm" // one session each side warms up on
)

// Takeover measures the bulk takeover of `sessions` sessions of a dead node
// (an ownership row at epoch 1, an owner-index entry and one item each; no
// lease) by a residency.Manager of its own, beside the anchor: as many
// ownership claims, the lightweight transaction the store's Claim sends,
// issued directly with gocql over a second set of such sessions. Both sides
// keep `concurrency` in flight. The anchor runs in two halves, before and
// after the takeover, so the two share the machine's noise. rate is
// Takeover's limit: set it above what the takeover reaches, so that the
// limiter does not bind.
func (e *Env) Takeover(ctx context.Context, sessions, concurrency int, rate float64) (TakeoverResult, error) {
	res := TakeoverResult{Sessions: sessions, Concurrency: concurrency}
	if sessions < 2 || concurrency < 1 {
		return res, fmt.Errorf("takeover: %d sessions at concurrency %d (want at least 2 and 1)", sessions, concurrency)
	}
	st, err := store.Open(ctx, store.Options{Hosts: e.Hosts, Port: e.Port, Keyspace: e.Keyspace, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return res, err
	}
	defer st.Close()

	began := time.Now()
	items := []store.Item{{Key: "k", Value: value}}
	seed := func(owner, id string) error {
		if ok, _, err := st.CreateOwner(ctx, id, owner, 0, time.Hour); err != nil || !ok {
			return fmt.Errorf("seed %s: created=%v: %v", id, ok, err)
		}
		if err := st.IndexOwner(ctx, owner, id, 1, time.Hour); err != nil {
			return err
		}
		return st.WriteSession(ctx, &store.Write{Session: id, Epoch: 1, Seq: 1000, Items: items})
	}
	err = fanOut(2*sessions, 64, func(i int) error {
		if i%2 == 0 {
			return seed(takeoverGhost, fmt.Sprintf("takeover-%d", i/2))
		}
		return seed(rawGhost, fmt.Sprintf("takeover-raw-%d", i/2))
	})
	if err == nil {
		err = seed(warmGhost, "takeover-warm")
	}
	if err == nil {
		err = seed(rawGhost, "takeover-raw-warm")
	}
	if err != nil {
		return res, err
	}
	e.logf("  takeover: %d dead-owned sessions created in %s", 2*sessions+2, time.Since(began).Round(time.Millisecond))

	m, err := residency.New(residency.Config{NodeID: "bench-taker", Logger: slog.New(slog.DiscardHandler)}, st)
	if err != nil {
		return res, err
	}
	if err := m.Start(ctx); err != nil {
		return res, err
	}
	defer m.Close(context.WithoutCancel(ctx), true)
	raw, err := e.cluster().CreateSession()
	if err != nil {
		return res, err
	}
	defer raw.Close()
	// claimOwner of internal/store/statements.go, at the ownership TTL the
	// Manager claims with (its default, 7 days).
	stmt := fmt.Sprintf(`UPDATE %s.owners USING TTL ? SET owner = ?, epoch = ?, released = false, claimed_at = ? WHERE session = ? IF owner = ? AND epoch = ?`, e.Keyspace)
	claim := func(id string) error {
		row := map[string]any{}
		applied, err := raw.Query(stmt, 604800, "bench-claimer", int64(2), time.Now(), id, rawGhost, int64(1)).
			SerialConsistency(gocql.Serial).MapScanCASContext(ctx, row)
		if err == nil && !applied {
			err = fmt.Errorf("claim of %s not applied: %v", id, row)
		}
		return err
	}
	// Each side prepares its statements on a session of its own first.
	if err := claim("takeover-raw-warm"); err != nil {
		return res, err
	}
	if _, err := m.Adopt(ctx, "takeover-warm", residency.AdoptOptions{}); err != nil {
		return res, fmt.Errorf("warm-up adoption: %w", err)
	}

	claims := func(from, to int) (time.Duration, error) {
		began := time.Now()
		err := fanOut(to-from, concurrency, func(i int) error { return claim(fmt.Sprintf("takeover-raw-%d", from+i)) })
		return time.Since(began), err
	}
	half := sessions / 2
	first, err := claims(0, half)
	if err != nil {
		return res, err
	}
	var lastAdopted atomic.Int64 // nanoseconds since began of the last adoption
	began = time.Now()
	rep, err := m.Takeover(ctx, takeoverGhost, residency.TakeoverOptions{Rate: rate, Concurrency: concurrency,
		OnAdopted: func(*residency.Adopted) { lastAdopted.Store(int64(time.Since(began))) }})
	res.Ours = time.Since(began)
	if err != nil {
		return res, err
	}
	if rep.Adopted != sessions {
		return res, fmt.Errorf("takeover adopted %d of %d sessions (listed %d, skipped %d, failed %d): %w",
			rep.Adopted, sessions, rep.Listed, rep.Skipped, rep.Failed, errors.Join(rep.Errors...))
	}
	second, err := claims(half, sessions)
	if err != nil {
		return res, err
	}
	res.Raw = first + second
	res.OursPerS = float64(sessions) / res.Ours.Seconds()
	res.RawPerS = float64(sessions) / res.Raw.Seconds()
	e.logf("  takeover: %d sessions in %s (%.0f/s; the last adopted after %s); raw claims %s + %s (%.0f/s); concurrency %d",
		sessions, res.Ours.Round(time.Millisecond), res.OursPerS, time.Duration(lastAdopted.Load()).Round(time.Millisecond),
		first.Round(time.Millisecond), second.Round(time.Millisecond), res.RawPerS, concurrency)
	return res, nil
}

// fanOut calls fn(i) for every i in [0, n) from `workers` goroutines and
// returns the first error; after it, no further call starts.
func fanOut(n, workers int, fn func(i int) error) error {
	var (
		next   atomic.Int64
		failed atomic.Bool
		wg     sync.WaitGroup
		mu     sync.Mutex
		first  error
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
