package residency

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// readHog holds the first ReadOwner of one session until released, then
// answers as a store whose request was cancelled when its context ended.
type readHog struct {
	*memstore.Store
	session string
	reads   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (h *readHog) ReadOwner(ctx context.Context, s string) (store.Owner, bool, error) {
	if s == h.session && h.reads.Add(1) == 1 {
		close(h.entered)
		<-h.release
		if err := ctx.Err(); err != nil {
			return store.Owner{}, false, err
		}
	}
	return h.Store.ReadOwner(ctx, s)
}

// Concurrent adoptions of one session share one lookup, but not its
// caller's context: a caller whose context is live is not answered with the
// cancellation of the caller whose lookup it joined (a host's request given
// up by its client while a retry of it waits). Before, the second caller got
// context.Canceled although nothing had stopped it.
func TestAdoptionJoiningACancelledLookupLooksAgain(t *testing.T) {
	h := &readHog{Store: memstore.New(), session: "s", entered: make(chan struct{}), release: make(chan struct{})}
	if ok, _, err := h.CreateOwner(context.Background(), "s", "dead", 0, time.Hour); err != nil || !ok {
		t.Fatalf("create owner: %v %v", ok, err)
	}
	m := started(t, Config{NodeID: "b", LeaseTTL: 10 * time.Minute}, h)

	first, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := m.Adopt(first, "s", AdoptOptions{})
		firstErr <- err
	}()
	<-h.entered
	second := make(chan error, 1)
	var got *Adopted
	go func() {
		a, err := m.Adopt(context.Background(), "s", AdoptOptions{})
		got = a
		second <- err
	}()
	time.Sleep(100 * time.Millisecond) // the second caller joins the lookup in flight
	cancel()
	close(h.release)
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled caller: %v, want context.Canceled", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("the caller whose context is live: %v, want the session adopted", err)
	}
	if got.PreviousOwner != "dead" || got.Epoch != 2 {
		t.Fatalf("adopted %+v, want epoch 2 from dead", got)
	}
	if n := h.reads.Load(); n != 2 {
		t.Fatalf("%d owner reads, want 2 (the cancelled lookup, then the second caller's own)", n)
	}
}
