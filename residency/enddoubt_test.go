package residency

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
)

// loseEndOnce applies the next EndOwner of one session, then fails it as a
// timeout would (its reply lost).
type loseEndOnce struct {
	*memstore.Store
	mu      sync.Mutex
	session string
}

func (f *loseEndOnce) EndOwner(ctx context.Context, s, node string, epoch uint64, ttl time.Duration) (bool, error) {
	f.mu.Lock()
	lose := s == f.session
	if lose {
		f.session = ""
	}
	f.mu.Unlock()
	applied, err := f.Store.EndOwner(ctx, s, node, epoch, ttl)
	if lose && err == nil {
		return false, memstore.ErrInjected
	}
	return applied, err
}

// An End record that failed is in doubt while the node holds the session at
// the epoch it tried, and only then: once Ended is called again (it finds
// the row ended and forgets the session), or the host forgets the session,
// or the session is owned again at another epoch, a stale doubt must not
// make the adapter end that session's next life.
func TestEndInDoubtHoldsForTheEpochTriedOnly(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	f := &loseEndOnce{Store: st, session: "s"}
	x := started(t, Config{NodeID: "x", LeaseTTL: 10 * time.Minute, MaxClockSkew: time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}, f)
	e, err := x.EnsureOwned(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if x.EndInDoubt("s") {
		t.Fatal("in doubt before any End")
	}
	if err := x.Ended(ctx, "s"); err == nil {
		t.Fatal("the End's lost reply was not reported")
	}
	if !x.EndInDoubt("s") {
		t.Fatal("the End's record failed, yet it is not in doubt")
	}
	if held, ok := x.Epoch("s"); !ok || held != e {
		t.Fatalf("held at %d (%v) after a failed End, want %d", held, ok, e)
	}
	if err := x.Ended(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if x.EndInDoubt("s") {
		t.Error("still in doubt once the End was recorded")
	}
	if _, ok := x.Epoch("s"); ok {
		t.Error("still owned once the End was recorded")
	}

	// A doubt left by a failure, then the session owned at another epoch.
	f.mu.Lock()
	f.session = "s"
	f.mu.Unlock()
	e2, err := x.EnsureOwned(ctx, "s")
	if err != nil || e2 <= e {
		t.Fatalf("started afresh at %d (%v), want above %d", e2, err, e)
	}
	if err := x.Ended(ctx, "s"); err == nil {
		t.Fatal("the End's lost reply was not reported")
	}
	x.holdUnlessFenced("s", e2+5, x.stats.fences.Load()) // owned again at another epoch (a re-adoption)
	if x.EndInDoubt("s") {
		t.Error("a doubt about epoch", e2, "applies to the session held at", e2+5)
	}
	x.holdUnlessFenced("s", e2, x.stats.fences.Load())
	x.Forget("s")
	x.holdUnlessFenced("s", e2, x.stats.fences.Load())
	if x.EndInDoubt("s") {
		t.Error("a doubt outlived Forget")
	}
}
