package residency

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// stalledLease is a store whose reads of one peer's lease hang until their
// context ends (a stalled Cassandra replica), or for at most cap.
type stalledLease struct {
	*memstore.Store
	peer string
	cap  time.Duration
}

func (s *stalledLease) ReadLease(ctx context.Context, node string) (store.Lease, bool, error) {
	if node == s.peer {
		select {
		case <-ctx.Done():
			return store.Lease{}, false, ctx.Err()
		case <-time.After(s.cap):
		}
	}
	return s.Store.ReadLease(ctx, node)
}

// An Adopt must return once its context ends, even while the read of the
// owner's lease hangs (a stalled replica). The read is shared by the
// adoptions of one owner's sessions and runs on a context none of them can
// end, and every caller waited for it: here 5 s for a 100 ms context, on
// Cassandra the driver's timeout. Found by review.
func TestAnAdoptEndsWithItsContextWhileTheOwnersLeaseReadHangs(t *testing.T) {
	st := &stalledLease{Store: memstore.New(), peer: "peer", cap: 5 * time.Second}
	if ok, _, err := st.CreateOwner(context.Background(), "s", "peer", 0, time.Hour); err != nil || !ok {
		t.Fatal(ok, err)
	}
	m := started(t, Config{NodeID: "b", LeaseTTL: 10 * time.Minute}, st)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := m.Adopt(ctx, "s", AdoptOptions{})
	took := time.Since(began)
	if took > time.Second {
		t.Fatalf("Adopt with a 100ms context returned after %s (err %v)", took.Round(time.Millisecond), err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
}
