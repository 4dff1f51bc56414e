package residency

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// recordLog keeps the attributes of the records logged with one message.
type recordLog struct {
	mu    sync.Mutex
	msg   string
	found []map[string]any
}

func (r *recordLog) Enabled(context.Context, slog.Level) bool { return true }
func (r *recordLog) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recordLog) WithGroup(string) slog.Handler            { return r }
func (r *recordLog) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message != r.msg {
		return nil
	}
	attrs := map[string]any{}
	rec.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.Any()
		return true
	})
	r.mu.Lock()
	r.found = append(r.found, attrs)
	r.mu.Unlock()
	return nil
}

// The line a recovery logs when it unfences the node counts the sessions
// kept and those lost. Lost are also the new sessions the fence discarded
// (never recorded, so never settled by a claim); the kept count subtracted
// them from the settled ones and came out short: 0 kept of 3 here.
func TestRecoveryLogCountsTheSessionsItKept(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	log := &recordLog{msg: "holdover: lease renewed, node unfenced"}
	fl := &discardLog{pending: []string{"new-1", "new-2"}}
	var lost []string
	x := started(t, Config{NodeID: "x", LeaseTTL: 10 * time.Minute, MaxClockSkew: time.Millisecond,
		Logger: slog.New(log), Flusher: fl, OnRecovered: func(s []string) { lost = s }}, st)
	for _, s := range []string{"a", "b", "c"} {
		if _, err := x.EnsureOwned(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// A peer adopts c while x is cut off.
	ec, _ := x.Epoch("c")
	if won, cur, err := st.Claim(ctx, "c", store.Owner{Node: "x", Epoch: ec}, "y", time.Hour); !won || err != nil {
		t.Fatalf("peer's claim of c: won=%v row=%+v err=%v", won, cur, err)
	}
	x.fence()
	x.recover()
	if x.Fenced() {
		t.Fatal("recovery did not unfence")
	}
	slices.Sort(lost)
	if want := []string{"c", "new-1", "new-2"}; !slices.Equal(lost, want) {
		t.Fatalf("OnRecovered(%v), want %v", lost, want)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.found) != 1 {
		t.Fatalf("%d unfence lines logged, want 1", len(log.found))
	}
	if kept, lostN := log.found[0]["kept"], log.found[0]["lost"]; kept != int64(2) || lostN != int64(3) {
		t.Fatalf("unfence line says kept=%v lost=%v; x kept a and b and lost c, new-1 and new-2", kept, lostN)
	}
}
