package harness

import (
	"context"
	"fmt"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/store"
)

// AdoptResult holds adoption latencies in milliseconds.
type AdoptResult struct {
	OursP50, OursP99, FloorP50, FloorP99 float64
	// FencedP50 and FencedP99 are the floor plus the fencing write (the
	// partition tombstone and the restored items, one batch): what the
	// adoption protocol must do at least, issued directly with gocql.
	FencedP50, FencedP99 float64
	// ReleasedP50 and ReleasedP99 are ours for sessions their owner released
	// (a graceful shutdown), which need no fence.
	ReleasedP50, ReleasedP99 float64
	Sessions                 int
}

// Adopt measures the latency of adopting non-resident sessions of 8 items
// each (owned by a node with no lease), beside the floor: the same claim (a
// lightweight transaction on the ownership row) plus the read of the state,
// issued directly with gocql; and beside the floor plus the fencing write.
// It also adopts sessions their owner released, which need no fence. All
// alternate, session by session, so they share the machine's noise.
func (e *Env) Adopt(ctx context.Context, sessions int) (AdoptResult, error) {
	st, err := store.Open(ctx, store.Options{Hosts: e.Hosts, Port: e.Port, Keyspace: e.Keyspace})
	if err != nil {
		return AdoptResult{}, err
	}
	defer st.Close()
	items := make([]store.Item, 8)
	for i := range items {
		items[i] = store.Item{Key: fmt.Sprintf("k%d", i), Value: value}
	}
	seed := func(id string) error {
		if ok, _, err := st.CreateOwner(ctx, id, "ghost", 0, time.Hour); err != nil || !ok {
			return fmt.Errorf("seed %s: created=%v: %v", id, ok, err)
		}
		return st.WriteSession(ctx, &store.Write{Session: id, Epoch: 1, Seq: 1000, Items: items})
	}
	kinds := []string{"ours", "floor", "fenced", "released"}
	for i := 0; i < sessions; i++ {
		for _, k := range kinds {
			if err := seed(fmt.Sprintf("adopt-%s-%d", k, i)); err != nil {
				return AdoptResult{}, err
			}
		}
		id := fmt.Sprintf("adopt-released-%d", i)
		if ok, err := st.Release(ctx, id, "ghost", 1, time.Hour); err != nil || !ok {
			return AdoptResult{}, fmt.Errorf("release %s: %v %v", id, ok, err)
		}
	}
	a, err := adapter.Open(ctx, e.config("bench-adopter"), quiet())
	if err != nil {
		return AdoptResult{}, err
	}
	defer a.Close(context.WithoutCancel(ctx))
	raw, err := e.cluster().CreateSession()
	if err != nil {
		return AdoptResult{}, err
	}
	defer raw.Close()
	claim := fmt.Sprintf(`UPDATE %s.owners USING TTL 3600 SET owner = ?, epoch = ?, released = false, claimed_at = ? WHERE session = ? IF owner = ? AND epoch = ?`, e.Keyspace)
	read := fmt.Sprintf(`SELECT key, value, format FROM %s.state WHERE session = ?`, e.Keyspace)
	tomb := fmt.Sprintf(`DELETE FROM %s.state USING TIMESTAMP ? WHERE session = ?`, e.Keyspace)
	insert := fmt.Sprintf(`INSERT INTO %s.state (session, key, value, format) VALUES (?, ?, ?, ?) USING TIMESTAMP ? AND TTL ?`, e.Keyspace)

	// floor claims and reads id directly; with fence set it also writes the
	// fencing batch of what it read.
	floor := func(id string, fence bool) error {
		row := map[string]any{}
		applied, err := raw.Query(claim, "bench-floor", int64(2), time.Now(), id, "ghost", int64(1)).
			SerialConsistency(anchorSerial).MapScanCASContext(ctx, row)
		if err != nil || !applied {
			return fmt.Errorf("floor claim of %s: applied=%v: %v", id, applied, err)
		}
		iter := raw.Query(read, id).Idempotent(true).IterContext(ctx)
		var (
			got []store.Item
			k   string
			v   []byte
			f   int8
		)
		for iter.Scan(&k, &v, &f) {
			got = append(got, store.Item{Key: k, Value: v})
		}
		if err := iter.Close(); err != nil || len(got) != 8 {
			return fmt.Errorf("floor read of %s: %d rows: %v", id, len(got), err)
		}
		if !fence {
			return nil
		}
		base := store.EpochBase(2)
		b := raw.Batch(gocql.UnloggedBatch)
		b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: tomb, Args: []any{base, id}, Idempotent: true})
		for _, it := range got {
			b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: insert, Args: []any{id, it.Key, it.Value, int8(1), base + 1, 604800}, Idempotent: true})
		}
		return b.ExecContext(ctx)
	}

	adopt := func(id string) (float64, error) {
		began := time.Now()
		s, err := a.Adopt(ctx, id)
		if err != nil {
			return 0, err
		}
		took := ms(time.Since(began))
		if len(s.Items) != 8 {
			return 0, fmt.Errorf("adopted %d items of %s, want 8", len(s.Items), id)
		}
		return took, nil
	}
	var ours, floors, fenced, released []float64
	timedFloor := func(fence bool) func(string) (float64, error) {
		return func(id string) (float64, error) {
			began := time.Now()
			err := floor(id, fence)
			return ms(time.Since(began)), err
		}
	}
	runs := []struct {
		kind string
		run  func(id string) (float64, error)
		took *[]float64
	}{{"ours", adopt, &ours}, {"released", adopt, &released}, {"floor", timedFloor(false), &floors}, {"fenced", timedFloor(true), &fenced}}
	for i := 0; i < sessions; i++ {
		// The four take turns, starting one further each time, so that none
		// always follows the same one (the adapter's work after an adoption,
		// a connection just used).
		for j := range runs {
			r := runs[(i+j)%len(runs)]
			took, err := r.run(fmt.Sprintf("adopt-%s-%d", r.kind, i))
			if err != nil {
				return AdoptResult{}, err
			}
			*r.took = append(*r.took, took)
		}
	}
	return AdoptResult{
		OursP50: percentile(ours, 50), OursP99: percentile(ours, 99),
		FloorP50: percentile(floors, 50), FloorP99: percentile(floors, 99),
		FencedP50: percentile(fenced, 50), FencedP99: percentile(fenced, 99),
		ReleasedP50: percentile(released, 50), ReleasedP99: percentile(released, 99),
		Sessions: sessions,
	}, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
