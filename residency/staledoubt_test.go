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

// staleRecording holds the first creation of a session until released, and
// loses the reply of the second (it applies, and answers an error).
type staleRecording struct {
	*memstore.Store
	mu      sync.Mutex
	calls   int
	entered chan struct{}
	release chan struct{}
}

var errReplyLost = errors.New("reply lost")

func (s *staleRecording) CreateOwner(ctx context.Context, session, node string, ended uint64, ttl time.Duration) (bool, store.Owner, error) {
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.mu.Unlock()
	switch n {
	case 1:
		close(s.entered)
		<-s.release
	case 2:
		s.Store.CreateOwner(ctx, session, node, ended, ttl)
		return false, store.Owner{}, errReplyLost
	}
	return s.Store.CreateOwner(ctx, session, node, ended, ttl)
}

// A recording that was under way when the node fenced ends, once it
// answers, in ErrCreationLapsed. If, meanwhile, the node recovered and a new
// recording of the same session (the host started it again) failed without
// saying whether it landed, the session is Unsettled: its row may name this
// node. The stale recording's outcome must not settle it: it says nothing
// about the later one. It used to (recorded cleared doubtful on
// ErrCreationLapsed), so Unsettled turned false while a row named this node
// that this node did not hold: an End flushed then was skipped and the row
// named this node for good (the very case Unsettled exists for).
func TestAStaleRecordingKeepsALaterOnesDoubt(t *testing.T) {
	ctx := context.Background()
	st := &staleRecording{Store: memstore.New(), entered: make(chan struct{}), release: make(chan struct{})}
	m := started(t, Config{NodeID: "a", LeaseTTL: 10 * time.Minute}, st)
	t.Cleanup(func() {
		select {
		case <-st.release:
		default:
			close(st.release)
		}
	})

	m.Prepare("d") // the host accepted d's first changes
	<-st.entered   // its record is on its way
	m.fence()      // the lease lapsed: d's changes are discarded
	m.recover()
	if m.Fenced() {
		t.Fatal("still fenced after recover")
	}
	// The host starts d again; its recording's reply is lost.
	if _, err := m.EnsureOwned(ctx, "d"); err == nil {
		t.Fatal("EnsureOwned with its reply lost succeeded")
	}
	if !m.Unsettled("d") {
		t.Fatal("precondition: Unsettled false after a recording whose reply was lost")
	}
	close(st.release) // the stale recording answers now
	m.preparations.Wait()

	o, found := st.Owner("d")
	_, owned := m.Epoch("d")
	if found && o.Node == "a" && !owned && !m.Unsettled("d") {
		t.Fatalf("row %+v names this node, which does not hold d, and Unsettled(d) is false: "+
			"the stale (pre-fence) recording's ErrCreationLapsed cleared the later recording's doubt", o)
	}
}
