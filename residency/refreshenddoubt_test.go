package residency

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
)

// An End whose record lost its reply (applied) leaves the session held at
// its old epoch, in doubt (EndInDoubt), and the adapter's next flush records
// the End again and owns the session afresh, keeping the changes committed
// after the End. The refresh loop, meanwhile, finds the row ended (its
// compare-and-set on the old epoch fails) and takes that for "another node
// adopted it". It used to forget the session, count it lost and discard the
// buffer's unwritten changes, which were acknowledged changes of a session
// nobody else owns.
func TestRefreshKeepsASessionWhoseEndIsInDoubt(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	frozen := time.Now()
	st.Now = func() time.Time { return frozen } // nothing expires in the store
	f := &loseEndOnce{Store: st, session: "s"}
	buf := &discardLog{pending: []string{"s"}}
	m := started(t, Config{NodeID: "a", LeaseTTL: 10 * time.Minute, OwnershipTTL: 60 * time.Millisecond,
		RefreshEvery: 5 * time.Millisecond, Flusher: buf}, f)
	e, err := m.EnsureOwned(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ended(ctx, "s"); err == nil {
		t.Fatal("the End's lost reply was not reported")
	}
	if !m.EndInDoubt("s") {
		t.Fatal("End not in doubt")
	}
	// The host commits changes to the session started afresh; they wait in
	// the buffer with the End's retry. Give the refresh loop a few passes.
	time.Sleep(300 * time.Millisecond)
	if buf.has("s") {
		held, owned := m.Epoch("s")
		t.Fatalf("refresh discarded the unwritten changes of a session whose End is in doubt (epoch %d; now owned=%v at %d, Stats.Lost=%d); no node adopted it",
			e, owned, held, m.Stats().Lost)
	}
	// The adapter's retry then records the End and owns the session afresh.
	if !m.EndInDoubt("s") {
		t.Fatal("the End is no longer in doubt, yet nobody recorded it again")
	}
}

// slowEnd applies EndOwner of one session, then holds its reply until a
// refresh of that session has failed (its compare-and-set finds the row
// ended).
type slowEnd struct {
	*memstore.Store
	session   string
	refreshed chan struct{}
	once      sync.Once
}

func (s *slowEnd) EndOwner(ctx context.Context, session, node string, epoch uint64, ttl time.Duration) (bool, error) {
	applied, err := s.Store.EndOwner(ctx, session, node, epoch, ttl)
	if session == s.session {
		select {
		case <-s.refreshed:
		case <-time.After(10 * time.Second):
		}
	}
	return applied, err
}

func (s *slowEnd) RefreshOwner(ctx context.Context, session, node string, epoch uint64, ttl time.Duration) (bool, error) {
	ok, err := s.Store.RefreshOwner(ctx, session, node, epoch, ttl)
	if session == s.session && err == nil && !ok {
		s.once.Do(func() { close(s.refreshed) })
	}
	return ok, err
}

// The same without a lost reply: a refresh that runs while the End's record
// is on its way (applied, its reply not back yet) finds the row ended too,
// and must not discard the changes committed since the End either.
func TestRefreshDuringAnEndRecordKeepsTheSession(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	frozen := time.Now()
	st.Now = func() time.Time { return frozen }
	f := &slowEnd{Store: st, session: "s", refreshed: make(chan struct{})}
	buf := &discardLog{pending: []string{"s"}}
	m := started(t, Config{NodeID: "a", LeaseTTL: 10 * time.Minute, OwnershipTTL: 60 * time.Millisecond,
		RefreshEvery: 5 * time.Millisecond, Flusher: buf}, f)
	if _, err := m.EnsureOwned(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if err := m.Ended(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.refreshed:
	default:
		t.Fatal("no refresh ran while the End's record was on its way: the test proves nothing")
	}
	if buf.has("s") {
		t.Fatalf("a refresh during the End's record discarded the session's unwritten changes (Stats.Lost=%d)", m.Stats().Lost)
	}
	if m.Stats().Lost != 0 {
		t.Errorf("Stats.Lost %d: the session was ended here, not adopted elsewhere", m.Stats().Lost)
	}
}
