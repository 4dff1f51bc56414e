package residency

import (
	"context"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// blockOwnerRead holds every ReadOwner of session s until its caller's
// context ends, and says when one has begun.
type blockOwnerRead struct {
	*memstore.Store
	began chan struct{}
}

func (b *blockOwnerRead) ReadOwner(ctx context.Context, s string) (store.Owner, bool, error) {
	if s == "s" {
		select {
		case b.began <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return store.Owner{}, false, ctx.Err()
	}
	return b.Store.ReadOwner(ctx, s)
}

// A takeover that joins a host's Adopt of one of the dead node's sessions
// (single flight) gets that adoption's outcome. When the Adopt ends
// because its caller's context did, the takeover, whose context lives, must
// look again, as an Adopt joined so does ("a caller whose lookup ended
// because the first caller's context did looks again"). It used to report
// the session Failed with the host's "context canceled".
func TestTakeoverJoiningACancelledAdoptLooksAgain(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	ownedAndIndexed(t, st, "s", "x")
	w := &blockOwnerRead{Store: st, began: make(chan struct{}, 1)}
	m := started(t, Config{NodeID: "b", LeaseTTL: 10 * time.Minute}, w)

	hctx, cancel := context.WithCancel(ctx)
	host := make(chan error, 1)
	go func() {
		_, err := m.Adopt(hctx, "s", AdoptOptions{})
		host <- err
	}()
	<-w.began
	type res struct {
		rep TakeoverReport
		err error
	}
	took := make(chan res, 1)
	go func() {
		rep, err := m.Takeover(ctx, "x", TakeoverOptions{})
		took <- res{rep, err}
	}()
	time.Sleep(200 * time.Millisecond) // the takeover joins the host's adoption
	cancel()
	<-host
	r := <-took
	_, held := m.Epoch("s")
	if r.err != nil || r.rep.Adopted != 1 || !held {
		t.Fatalf("takeover %+v, err %v, held %v: want s adopted (the takeover's context lives; only the host's ended)", r.rep, r.err, held)
	}
}
