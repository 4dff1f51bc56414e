package residency

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/cassandratest"
	"github.com/holdover/holdover/internal/store"
)

// slowStore is the real store with slow ownership reads and renewals that
// fail on demand.
type slowStore struct {
	*store.Store
	readDelay   time.Duration
	reads       atomic.Int64
	failRenew   atomic.Bool
	onFirstRead func()
	once        sync.Once
}

func (s *slowStore) ReadOwner(ctx context.Context, session string) (store.Owner, bool, error) {
	s.reads.Add(1)
	if s.onFirstRead != nil {
		s.once.Do(s.onFirstRead)
	}
	select {
	case <-time.After(s.readDelay):
	case <-ctx.Done():
		return store.Owner{}, false, ctx.Err()
	}
	return s.Store.ReadOwner(ctx, session)
}

func (s *slowStore) RenewLease(ctx context.Context, node string, ttl time.Duration) error {
	if s.failRenew.Load() {
		return errors.New("renewal refused by the test")
	}
	return s.Store.RenewLease(ctx, node, ttl)
}

// recoveryNode starts node "a" over a slow store owning n sessions, and
// returns it with channels fed by OnFenced and OnRecovered.
func recoveryNode(t *testing.T, n int, readDelay time.Duration) (*Manager, *slowStore, chan []string, chan []string) {
	t.Helper()
	hosts, port := cassandratest.Hosts(t)
	st, err := store.Open(context.Background(), store.Options{Hosts: hosts, Port: port, Keyspace: cassandratest.Keyspace(t), CreateSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	slow := &slowStore{Store: st, readDelay: readDelay}
	fenced, recovered := make(chan []string, 4), make(chan []string, 4)
	a, err := New(Config{NodeID: "a", LeaseTTL: 2 * time.Second,
		OnFenced:    func(s []string) { fenced <- s },
		OnRecovered: func(lost []string) { recovered <- lost },
	}, slow)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(ctx, false) })
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := a.EnsureOwned(ctx, fmt.Sprint("s", i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return a, slow, fenced, recovered
}

// A node owning more sessions than it can check within one lease TTL one by
// one recovers from a fence all the same: the rows are read concurrently and
// the lease is renewed while they are, so it never lapses again and the node
// unfences once, keeping every session.
func TestRecoveryOutlastingTheLease(t *testing.T) {
	t.Parallel()
	// 320 reads of 200 ms: 64 s one by one, 2 s at 32 in flight, the
	// lease's TTL.
	const n, delay = 320, 200 * time.Millisecond
	a, slow, fenced, recovered := recoveryNode(t, n, delay)
	a.lastRenew.Store(time.Now().Add(-10 * time.Second).UnixNano()) // a lapse noticed on wake
	if a.LeaseValid() {
		t.Fatal("a lapsed lease reported valid")
	}
	select {
	case s := <-fenced:
		if len(s) != n {
			t.Fatalf("fenced with %d sessions, want %d", len(s), n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no fence")
	}
	began := time.Now()
	select {
	case lost := <-recovered:
		if len(lost) != 0 {
			t.Fatalf("recovery lost %v", lost)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no recovery after 30 s (%d ownership reads)", slow.reads.Load())
	}
	took := time.Since(began)
	st := a.Stats()
	if st.Fences != 1 || st.Fenced || st.Owned != n || !a.LeaseValid() {
		t.Fatalf("after recovery: %+v, lease valid %v", st, a.LeaseValid())
	}
	if got := slow.reads.Load(); got != n {
		t.Fatalf("%d ownership reads, want %d", got, n)
	}
	// The recovery outlasted one renewal period, so it must have renewed.
	if took > a.cfg.LeaseRenew && st.Renewals < 2 {
		t.Fatalf("recovery took %v with %d renewals", took, st.Renewals)
	}
	t.Logf("recovered %d sessions in %v; renewals %d", n, took.Round(time.Millisecond), st.Renewals)
}

// When renewals fail during a recovery until the lease may lapse, the
// recovery stops and the node stays fenced; once renewals succeed again it
// recovers and unfences, telling OnRecovered once.
func TestRecoveryStopsWhenRenewalsFail(t *testing.T) {
	t.Parallel()
	const n = 320
	a, slow, fenced, recovered := recoveryNode(t, n, 200*time.Millisecond)
	slow.onFirstRead = func() { slow.failRenew.Store(true) }
	a.lastRenew.Store(time.Now().Add(-10 * time.Second).UnixNano())
	a.LeaseValid() // asks the lease goroutine to fence now
	select {
	case <-fenced:
	case <-time.After(5 * time.Second):
		t.Fatal("no fence")
	}
	// Renewals fail from the first ownership read on: within the TTL the
	// recovery gives up, with reads left undone.
	deadline := time.Now().Add(10 * time.Second)
	for a.Stats().RenewFailures < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(a.cfg.LeaseTTL)
	select {
	case lost := <-recovered:
		t.Fatalf("recovered (lost %v) while renewals fail", lost)
	default:
	}
	if st := a.Stats(); !st.Fenced || st.RenewFailures < 2 || a.LeaseValid() {
		t.Fatalf("while renewals fail: %+v", st)
	}
	if got := slow.reads.Load(); got >= n {
		t.Fatalf("the stopped recovery read all %d rows", got)
	}
	slow.failRenew.Store(false)
	select {
	case lost := <-recovered:
		if len(lost) != 0 {
			t.Fatalf("recovery lost %v", lost)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no recovery once renewals succeed")
	}
	if st := a.Stats(); st.Fenced || st.Owned != n || !a.LeaseValid() {
		t.Fatalf("after recovery: %+v", st)
	}
}

// countingStore is the real store with slow creations whose concurrency it
// records.
type countingStore struct {
	*store.Store
	delay          time.Duration
	inFlight, most atomic.Int64
}

func (s *countingStore) CreateOwner(ctx context.Context, session, node string, ttl time.Duration) (bool, store.Owner, error) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for m := s.most.Load(); n > m && !s.most.CompareAndSwap(m, n); m = s.most.Load() {
	}
	time.Sleep(s.delay)
	return s.Store.CreateOwner(ctx, session, node, ttl)
}

// A burst of new sessions records their ownership MaxConcurrentCreates at a
// time, and every one of them is recorded.
func TestCreatesAreBounded(t *testing.T) {
	t.Parallel()
	for _, bad := range []int{-1, 4097} {
		if _, err := New(Config{NodeID: "a", MaxConcurrentCreates: bad}, nil); err == nil || !strings.Contains(err.Error(), "MaxConcurrentCreates") {
			t.Errorf("MaxConcurrentCreates %d: %v", bad, err)
		}
	}
	hosts, port := cassandratest.Hosts(t)
	st, err := store.Open(context.Background(), store.Options{Hosts: hosts, Port: port, Keyspace: cassandratest.Keyspace(t), CreateSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	cs := &countingStore{Store: st, delay: 20 * time.Millisecond}
	a, err := New(Config{NodeID: "a", MaxConcurrentCreates: 4}, cs)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx, false)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.EnsureOwned(ctx, fmt.Sprint("new-", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if most := cs.most.Load(); most != 4 {
		t.Fatalf("at most %d creations in flight, want 4", most)
	}
	if st := a.Stats(); st.Created != 40 || st.Owned != 40 {
		t.Fatalf("%+v", st)
	}
	// A caller whose context ends while it waits for a slot gives up.
	for range 4 {
		a.creates <- struct{}{}
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := a.EnsureOwned(cctx, "waits"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for a slot past the deadline: %v", err)
	}
	for range 4 {
		<-a.creates
	}
}
