package residency

import (
	"context"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// slowCreateReply applies a creation of session at once but holds its reply.
type slowCreateReply struct {
	*memstore.Store
	session string
	applied chan struct{}
	release chan struct{}
}

func (s *slowCreateReply) CreateOwner(ctx context.Context, session, node string, ended uint64, ttl time.Duration) (bool, store.Owner, error) {
	ok, cur, err := s.Store.CreateOwner(ctx, session, node, ended, ttl)
	if session == s.session {
		close(s.applied)
		<-s.release
	}
	return ok, cur, err
}

// EnsureOwned "returns the epoch at which this node owns session". An
// Adopt of the session that runs while its recording's reply is on its way
// finds the row naming this node, claims it one epoch up and fences at that
// epoch; the recording then answers created at epoch 1. The node keeps the
// higher epoch (epochs held only rise), and EnsureOwned must return it. It
// used to return 1 while the node owned the session at 2: a first flush
// written at epoch 1 sat under the fence's partition tombstone at
// EpochBase(2) and was never visible.
func TestEnsureOwnedReturnsTheEpochHeldAfterARacingAdopt(t *testing.T) {
	ctx := context.Background()
	st := &slowCreateReply{Store: memstore.New(), session: "s", applied: make(chan struct{}), release: make(chan struct{})}
	m := started(t, Config{NodeID: "a", LeaseTTL: 10 * time.Minute}, st)
	done := ensuring(m, "s")
	<-st.applied
	a, err := m.Adopt(ctx, "s", AdoptOptions{})
	close(st.release)
	r := <-done
	held, _ := m.Epoch("s")
	o, _ := st.Owner("s")
	if r.err == nil && r.epoch != held {
		t.Fatalf("EnsureOwned returned epoch %d, the node holds %d (row %+v; racing Adopt: %+v, %v)", r.epoch, held, o, a, err)
	}
}
