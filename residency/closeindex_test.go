package residency

import (
	"context"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// stalledIndex is a store whose owner-index writes hang until their context
// ends, as on a stalled Cassandra.
type stalledIndex struct {
	*memstore.Store
}

func (s *stalledIndex) MoveIndex(ctx context.Context, from, to string, moved []store.Owned, stale []string, ttl time.Duration) error {
	<-ctx.Done()
	return ctx.Err()
}

func (s *stalledIndex) IndexOwner(ctx context.Context, node, session string, epoch uint64, ttl time.Duration) error {
	<-ctx.Done()
	return ctx.Err()
}

// Close waits for the owner-index updates of the adoptions made before it
// (a hint for bulk takeover), and they ran on contexts of their own: on a
// stalled Cassandra, a Close with a 100 ms context took their whole 5 s
// timeout. Close now ends them when its context ends.
func TestCloseEndsIndexUpdatesWhenItsContextEnds(t *testing.T) {
	for _, prev := range []string{"dead", "b"} { // a peer's session (moved), or one of this node's (reindexed)
		t.Run(prev, func(t *testing.T) {
			ctx := context.Background()
			st := &stalledIndex{Store: memstore.New()}
			if ok, _, err := st.CreateOwner(ctx, "s", prev, 0, time.Hour); err != nil || !ok {
				t.Fatal(ok, err)
			}
			m := started(t, Config{NodeID: "b", LeaseTTL: 10 * time.Minute}, st)
			if _, err := m.Adopt(ctx, "s", AdoptOptions{}); err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			began := time.Now()
			_ = m.Close(cctx, false)
			if took := time.Since(began); took > time.Second {
				t.Fatalf("Close with a 100ms context took %s waiting for index updates", took.Round(time.Millisecond))
			}
		})
	}
}
