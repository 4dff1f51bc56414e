package residency

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// expireBeforeClaim moves the store's clock past every row's TTL just
// before the first claim of session: the record a creation found void
// expires while the creation claims it.
type expireBeforeClaim struct {
	*memstore.Store
	session string
	once    sync.Once
	mu      sync.Mutex
	skip    time.Duration
}

func (s *expireBeforeClaim) Claim(ctx context.Context, session string, prev store.Owner, node string, ttl time.Duration) (bool, store.Owner, error) {
	if session == s.session {
		s.once.Do(func() {
			s.mu.Lock()
			s.skip = 2 * time.Hour
			s.mu.Unlock()
		})
	}
	return s.Store.Claim(ctx, session, prev, node, ttl)
}

func (s *expireBeforeClaim) now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Add(s.skip)
}

// A creation that found another node's void record (a dead node's, with
// nothing written) claims it to start the session afresh. When the record
// expired (or ended) before the claim landed, the claim found no owner and
// the creation failed with an *OwnedElsewhereError naming no node: the
// adapter drops a session owned elsewhere for good, and the new session's
// acknowledged changes were lost although nobody owned it. The creation now
// fails retryably, and its retry records the session.
func TestACreationOverAVoidRecordThatExpiresMeanwhileIsRetried(t *testing.T) {
	ctx := context.Background()
	st := &expireBeforeClaim{Store: memstore.New(), session: "s"}
	st.Store.Now = st.now
	if ok, _, err := st.CreateOwner(ctx, "s", "dead", 0, time.Hour); err != nil || !ok {
		t.Fatalf("the dead node's record: %v %v", ok, err)
	}
	m := started(t, Config{NodeID: "b", LeaseTTL: 10 * time.Minute}, st)
	_, err := m.EnsureOwned(ctx, "s")
	var oe *OwnedElsewhereError
	if errors.As(err, &oe) {
		t.Fatalf("a creation whose void record expired before its claim: %v (owner %q), want a retryable error", err, oe.Owner)
	}
	if e, err := m.EnsureOwned(ctx, "s"); err != nil || e != 1 {
		t.Fatalf("the retry of the creation: epoch %d, %v; want recorded at epoch 1", e, err)
	}
}
