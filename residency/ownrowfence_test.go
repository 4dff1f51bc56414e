package residency

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
)

// A new session whose creation finds a row naming this node (a row of an
// earlier incarnation, or this create's own record whose reply was lost) is
// recorded by a claim and a fence (the adopt path of ensureOwned). A node
// that fences while that claim/fence is on its way must not take the session
// as its own: the fence discarded the session's changes and reported it lost
// (ErrCreationLapsed, as on the three other creation paths). It used to: the
// creation succeeded, and the node held a session its recovery then
// reported lost in OnRecovered.
func TestCreationOverOwnEarlierRowAcrossAFenceIsRefused(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	// A row of an earlier incarnation of node "a", never written.
	if ok, _, err := st.CreateOwner(ctx, "r", "a", 0, time.Hour); err != nil || !ok {
		t.Fatalf("earlier incarnation's row: %v %v", ok, err)
	}
	h := &fenceHog{Store: st, session: "r", entered: make(chan struct{}), release: make(chan struct{})}
	fl := &discardLog{pending: []string{"r"}} // the session's first changes wait in the buffer
	var recovered [][]string
	var rmu sync.Mutex
	m := started(t, Config{NodeID: "a", LeaseTTL: 10 * time.Minute, Flusher: fl,
		OnRecovered: func(lost []string) { rmu.Lock(); recovered = append(recovered, lost); rmu.Unlock() }}, h)

	type res struct {
		epoch uint64
		err   error
	}
	done := make(chan res, 1)
	go func() { e, err := m.EnsureOwned(ctx, "r"); done <- res{e, err} }()
	select {
	case <-h.entered:
	case r := <-done:
		t.Fatalf("creation over the node's own earlier row ended before its fence: %d %v", r.epoch, r.err)
	}
	m.fence() // the lease lapsed while the claim's fence was on its way
	close(h.release)
	r := <-done
	m.recover()
	rmu.Lock()
	defer rmu.Unlock()
	e, owned := m.Epoch("r")
	if !errors.Is(r.err, ErrCreationLapsed) || owned {
		t.Fatalf("creation over own earlier row across a fence: epoch %d, err %v (want ErrCreationLapsed); "+
			"after recovery Epoch=(%d,%v), OnRecovered lost=%v, discarded=%v",
			r.epoch, r.err, e, owned, recovered, fl.discarded)
	}
}
