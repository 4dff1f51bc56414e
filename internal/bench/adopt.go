package bench

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
	Sessions                             int
}

// Adopt measures the latency of adopting non-resident sessions of 8 items
// each (owned by a node with no lease), beside the floor: the same claim (a
// lightweight transaction on the ownership row) plus the read of the state,
// issued directly with gocql. The two alternate, session by session, so they
// share the machine's noise.
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
		if ok, _, err := st.CreateOwner(ctx, id, "ghost", time.Hour); err != nil || !ok {
			return fmt.Errorf("seed %s: created=%v: %v", id, ok, err)
		}
		return st.WriteSession(ctx, &store.Write{Session: id, Epoch: 1, Seq: 1000, Items: items})
	}
	for i := 0; i < sessions; i++ {
		if err := seed(fmt.Sprintf("adopt-ours-%d", i)); err != nil {
			return AdoptResult{}, err
		}
		if err := seed(fmt.Sprintf("adopt-floor-%d", i)); err != nil {
			return AdoptResult{}, err
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

	var ours, floor []float64
	for i := 0; i < sessions; i++ {
		began := time.Now()
		s, err := a.Adopt(ctx, fmt.Sprintf("adopt-ours-%d", i))
		if err != nil {
			return AdoptResult{}, err
		}
		ours = append(ours, ms(time.Since(began)))
		if len(s.Items) != 8 {
			return AdoptResult{}, fmt.Errorf("adopted %d items, want 8", len(s.Items))
		}

		id := fmt.Sprintf("adopt-floor-%d", i)
		began = time.Now()
		row := map[string]any{}
		applied, err := raw.Query(claim, "bench-floor", int64(2), time.Now(), id, "ghost", int64(1)).
			SerialConsistency(gocql.LocalSerial).WithContext(ctx).MapScanCAS(row)
		if err != nil || !applied {
			return AdoptResult{}, fmt.Errorf("floor claim of %s: applied=%v: %v", id, applied, err)
		}
		iter := raw.Query(read, id).Idempotent(true).WithContext(ctx).Iter()
		n := 0
		var (
			k string
			v []byte
			f int8
		)
		for iter.Scan(&k, &v, &f) {
			n++
		}
		if err := iter.Close(); err != nil || n != 8 {
			return AdoptResult{}, fmt.Errorf("floor read of %s: %d rows: %v", id, n, err)
		}
		floor = append(floor, ms(time.Since(began)))
	}
	return AdoptResult{
		OursP50: percentile(ours, 50), OursP99: percentile(ours, 99),
		FloorP50: percentile(floor, 50), FloorP99: percentile(floor, 99),
		Sessions: sessions,
	}, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
