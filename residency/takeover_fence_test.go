package residency

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// slowFences records the groups of fences it is sent, each held for a
// while, as a busy Cassandra would.
type slowFences struct {
	*memstore.Store
	mu     sync.Mutex
	groups [][]store.Fencing
}

func (s *slowFences) FenceSessions(ctx context.Context, fs []store.Fencing, errs []error) {
	s.mu.Lock()
	s.groups = append(s.groups, fs)
	s.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	s.Store.FenceSessions(ctx, fs, errs)
}

// fenceAll fences fs concurrently and returns each one's outcome.
func fenceAll(fc *fencer, fs []store.Fencing) []error {
	errs := make([]error, len(fs))
	var wg sync.WaitGroup
	for i := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fc.fence(context.Background(), fs[i])
		}()
	}
	wg.Wait()
	return errs
}

// The fencer sends the fences waiting together, at most fenceGroup sessions
// and fenceGroupBytes to a request; each caller gets its own session's
// outcome; a lone fence is not held back for a group that never fills.
func TestFencerBoundsGroupsAndAnswersEachSession(t *testing.T) {
	t.Parallel()
	ms := memstore.New()
	ms.Faults = func(op, session string) memstore.Fault {
		if op == "fence" && session == "f-7" {
			return memstore.Fail
		}
		return memstore.OK
	}
	st := &slowFences{Store: ms}
	fc := newFencer(context.Background(), st, fencesInFlight)

	var fs []store.Fencing
	// More than fencesInFlight full groups: the rest wait, and leave in
	// groups as bounded.
	const n = fenceGroup*(fencesInFlight+2) + 5
	for i := range n {
		fs = append(fs, store.Fencing{Session: fmt.Sprintf("f-%d", i), Epoch: 2, Items: []store.Item{{Key: "k", Value: []byte("v")}}})
	}
	errs := fenceAll(fc, fs)
	for i, err := range errs {
		if (err != nil) != (fs[i].Session == "f-7") {
			t.Errorf("%s: %v", fs[i].Session, err)
		}
	}
	if !errors.Is(errs[7], memstore.ErrInjected) {
		t.Errorf("f-7: %v, want its own injected failure", errs[7])
	}
	most, total := 0, 0
	for _, g := range st.groups {
		most, total = max(most, len(g)), total+len(g)
	}
	if most != fenceGroup || total != n {
		t.Fatalf("%d fences sent in %d requests of at most %d sessions (%d in all), want full groups of %d", n, len(st.groups), most, total, fenceGroup)
	}
	for i, f := range fs {
		if f.Session == "f-7" {
			continue
		}
		if got := ms.Visible(f.Session); len(got) != 1 {
			t.Errorf("%s: %v after its fence, want k", fs[i].Session, got)
		}
	}

	// Fences too large to share a request go one to a request.
	st.groups = nil
	big := make([]byte, fenceGroupBytes*2/3)
	errs = fenceAll(fc, []store.Fencing{
		{Session: "big-1", Epoch: 2, Items: []store.Item{{Key: "k", Value: big}}},
		{Session: "big-2", Epoch: 2, Items: []store.Item{{Key: "k", Value: big}}},
		{Session: "big-3", Epoch: 2, Items: []store.Item{{Key: "k", Value: big}}},
	})
	for _, g := range st.groups {
		if len(g) != 1 {
			t.Errorf("a request carried %d fences of %d bytes each, over %d bytes", len(g), g[0].Bytes(), fenceGroupBytes)
		}
	}
	if len(st.groups) != 3 || errors.Join(errs...) != nil {
		t.Fatalf("3 large fences: %d requests, errors %v", len(st.groups), errs)
	}

	// A lone fence leaves once it has waited fenceWait for company.
	began := time.Now()
	if err := fc.fence(context.Background(), store.Fencing{Session: "lone", Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d < fenceWait || d > fenceWait+time.Second {
		t.Fatalf("a lone fence took %v, want about fenceWait (%v) and the request's 20 ms", d, fenceWait)
	}
}
