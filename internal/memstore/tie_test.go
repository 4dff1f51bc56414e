package memstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// Two puts of one key at the same write timestamp, a second or more apart,
// resolve in the model as in Cassandra: both cells expire (every state item
// has a TTL), and Cassandra breaks a tie between two live cells by their
// expiry, the later winning, before it compares values. Before, the model
// compared values only, so the diff test (which writes such ties on
// purpose) could fail without a bug, and the simulation settled a tie
// between two writers of one epoch otherwise than Cassandra does.
func TestEqualTimestampsResolveAsInCassandra(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	real := realStore(ctx, t)
	model := memstore.New()
	now := time.Now()
	model.Now = func() time.Time { return now }

	first := &store.Write{Session: "tie", Epoch: 1, Seq: 1000, Items: []store.Item{{Key: "k", Value: []byte("v1")}}}
	second := &store.Write{Session: "tie", Epoch: 1, Seq: 1000, Items: []store.Item{{Key: "k", Value: []byte("v0")}}}
	for _, st := range []interface {
		WriteSession(context.Context, *store.Write) error
	}{real, model} {
		if err := st.WriteSession(ctx, first); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // the next second: a later expiry
	now = now.Add(1100 * time.Millisecond)
	for _, st := range []interface {
		WriteSession(context.Context, *store.Write) error
	}{real, model} {
		if err := st.WriteSession(ctx, second); err != nil {
			t.Fatal(err)
		}
	}
	r, err := real.ReadState(ctx, "tie")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := model.ReadState(ctx, "tie")
	if a, b := fmt.Sprint(items(r)), fmt.Sprint(items(m)); a != b {
		t.Fatalf("state %s in cassandra, %s in the model", a, b)
	}
}
