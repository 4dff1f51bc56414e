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

// TakeoverResult is bulk takeovers beside the bare claims of as many
// sessions, over one or more rounds.
type TakeoverResult struct {
	Sessions    int // per round
	Concurrency int
	// OursPerS is sessions adopted per second by Manager.Takeover over all
	// rounds, each timed from its call to its return; Ours is their total
	// time.
	OursPerS float64
	Ours     time.Duration
	// RawPerS is ownership claims per second issued directly with gocql
	// over all rounds; Raw is their total time.
	RawPerS float64
	Raw     time.Duration
	// Rounds is each round's pair, in the order run.
	Rounds []TakeoverRound
}

// TakeoverRound is one round: a takeover of Sessions sessions and, around
// it, as many bare claims.
type TakeoverRound struct {
	Ours, Raw time.Duration
}

// Ratio is the round's takeover rate over its claims' rate.
func (r TakeoverRound) Ratio() float64 { return r.Raw.Seconds() / r.Ours.Seconds() }

// Dead owners of the takeover run: nodes with ownership rows and index
// entries but no lease. Round i's takeover takes over takeoverGhost-i.
const (
	takeoverGhost = "ghost"      // the nodes Takeover takes over
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
//
// It runs `rounds` such pairs, each on sessions created for it (and a dead
// node of its own), and sums their times: a single round's ratio moved by a
// tenth either way between back-to-back runs, likeliest as Cassandra's
// background work (a memtable flush, a compaction, a pause of its
// collector) landed on one side of it or the other (docs/performance.md).
func (e *Env) Takeover(ctx context.Context, sessions, concurrency, rounds int, rate float64) (TakeoverResult, error) {
	res := TakeoverResult{Sessions: sessions, Concurrency: concurrency}
	if sessions < 2 || concurrency < 1 || rounds < 1 {
		return res, fmt.Errorf("takeover: %d sessions at concurrency %d in %d rounds (want at least 2, 1 and 1)", sessions, concurrency, rounds)
	}
	st, err := store.Open(ctx, store.Options{Hosts: e.Hosts, Port: e.Port, Keyspace: e.Keyspace, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return res, err
	}
	defer st.Close()
	tk := &takeoverRun{e: e, st: st, sessions: sessions, concurrency: concurrency, rate: rate}
	if err := tk.seed(ctx, warmGhost, "takeover-warm"); err != nil {
		return res, err
	}
	if err := tk.seed(ctx, rawGhost, "takeover-raw-warm"); err != nil {
		return res, err
	}

	tk.m, err = residency.New(residency.Config{NodeID: "bench-taker", Logger: slog.New(slog.DiscardHandler)}, st)
	if err != nil {
		return res, err
	}
	if err := tk.m.Start(ctx); err != nil {
		return res, err
	}
	defer tk.m.Close(context.WithoutCancel(ctx), true)
	tk.raw, err = e.cluster().CreateSession()
	if err != nil {
		return res, err
	}
	defer tk.raw.Close()
	// claimOwner of internal/store/statements.go, at the ownership TTL the
	// Manager claims with (its default, 7 days).
	tk.stmt = fmt.Sprintf(`UPDATE %s.owners USING TTL ? SET owner = ?, epoch = ?, released = false, claimed_at = ? WHERE session = ? IF owner = ? AND epoch = ?`, e.Keyspace)
	// Each side prepares its statements on a session of its own first.
	if err := tk.claim(ctx, "takeover-raw-warm"); err != nil {
		return res, err
	}
	if _, err := tk.m.Adopt(ctx, "takeover-warm", residency.AdoptOptions{}); err != nil {
		return res, fmt.Errorf("warm-up adoption: %w", err)
	}

	for i := range rounds {
		r, err := tk.round(ctx, i)
		if err != nil {
			return res, fmt.Errorf("takeover round %d of %d: %w", i+1, rounds, err)
		}
		res.Rounds = append(res.Rounds, r)
		res.Ours += r.Ours
		res.Raw += r.Raw
	}
	res.OursPerS = float64(rounds*sessions) / res.Ours.Seconds()
	res.RawPerS = float64(rounds*sessions) / res.Raw.Seconds()
	return res, nil
}

// takeoverRun is what the rounds of one Takeover run share.
type takeoverRun struct {
	e                     *Env
	st                    *store.Store
	m                     *residency.Manager
	raw                   *gocql.Session
	stmt                  string
	sessions, concurrency int
	rate                  float64
}

var seedItems = []store.Item{{Key: "k", Value: value}}

// seed creates session id owned by owner at epoch 1, indexed under it, with
// one item.
func (tk *takeoverRun) seed(ctx context.Context, owner, id string) error {
	if ok, _, err := tk.st.CreateOwner(ctx, id, owner, 0, time.Hour); err != nil || !ok {
		return fmt.Errorf("seed %s: created=%v: %v", id, ok, err)
	}
	if err := tk.st.IndexOwner(ctx, owner, id, 1, time.Hour); err != nil {
		return err
	}
	return tk.st.WriteSession(ctx, &store.Write{Session: id, Epoch: 1, Seq: 1000, Items: seedItems})
}

// claim is the anchor's claim of session id, owned by rawGhost at epoch 1.
func (tk *takeoverRun) claim(ctx context.Context, id string) error {
	row := map[string]any{}
	applied, err := tk.raw.Query(tk.stmt, 604800, "bench-claimer", int64(2), time.Now(), id, rawGhost, int64(1)).
		SerialConsistency(gocql.Serial).MapScanCASContext(ctx, row)
	if err == nil && !applied {
		err = fmt.Errorf("claim of %s not applied: %v", id, row)
	}
	return err
}

// round creates the round's sessions, then claims half of the anchor's,
// takes over the dead node's and claims the other half.
func (tk *takeoverRun) round(ctx context.Context, n int) (TakeoverRound, error) {
	var r TakeoverRound
	ghost := fmt.Sprintf("%s-%d", takeoverGhost, n)
	rawID := func(i int) string { return fmt.Sprintf("takeover-raw-%d-%d", n, i) }
	began := time.Now()
	err := fanOut(2*tk.sessions, 64, func(i int) error {
		if i%2 == 0 {
			return tk.seed(ctx, ghost, fmt.Sprintf("takeover-%d-%d", n, i/2))
		}
		return tk.seed(ctx, rawGhost, rawID(i/2))
	})
	if err != nil {
		return r, err
	}
	tk.e.logf("  takeover: round %d: %d dead-owned sessions created in %s", n+1, 2*tk.sessions, time.Since(began).Round(time.Millisecond))

	claims := func(from, to int) (time.Duration, error) {
		began := time.Now()
		err := fanOut(to-from, tk.concurrency, func(i int) error { return tk.claim(ctx, rawID(from+i)) })
		return time.Since(began), err
	}
	half := tk.sessions / 2
	first, err := claims(0, half)
	if err != nil {
		return r, err
	}
	var lastAdopted atomic.Int64 // nanoseconds since began of the last adoption
	began = time.Now()
	rep, err := tk.m.Takeover(ctx, ghost, residency.TakeoverOptions{Rate: tk.rate, Concurrency: tk.concurrency,
		OnAdopted: func(*residency.Adopted) { lastAdopted.Store(int64(time.Since(began))) }})
	r.Ours = time.Since(began)
	if err != nil {
		return r, err
	}
	if rep.Adopted != tk.sessions {
		return r, fmt.Errorf("takeover adopted %d of %d sessions (listed %d, skipped %d, failed %d): %w",
			rep.Adopted, tk.sessions, rep.Listed, rep.Skipped, rep.Failed, errors.Join(rep.Errors...))
	}
	second, err := claims(half, tk.sessions)
	if err != nil {
		return r, err
	}
	r.Raw = first + second
	tk.e.logf("  takeover: round %d: %d sessions in %s (%.0f/s; the last adopted after %s); raw claims %s + %s (%.0f/s): %.2fx; concurrency %d",
		n+1, tk.sessions, r.Ours.Round(time.Millisecond), float64(tk.sessions)/r.Ours.Seconds(), time.Duration(lastAdopted.Load()).Round(time.Millisecond),
		first.Round(time.Millisecond), second.Round(time.Millisecond), float64(tk.sessions)/r.Raw.Seconds(), r.Ratio(), tk.concurrency)
	return r, nil
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
