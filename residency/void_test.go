package residency

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/store"
)

// fenceDuringCreate is a store whose ownership record of a new session
// returns only after the creating node has fenced, as when the record was
// sent just before a partition and lands when it heals.
type fenceDuringCreate struct {
	*store.Store
	during func()
}

func (f *fenceDuringCreate) CreateOwner(ctx context.Context, session, node string, ended uint64, ttl time.Duration) (bool, store.Owner, error) {
	ok, cur, err := f.Store.CreateOwner(ctx, session, node, ended, ttl)
	if f.during != nil {
		f.during()
	}
	return ok, cur, err
}

// The 30-minute soak (seed 3217539883822104) found a node whose record of a
// new session, sent just before a partition cut it off, landed when the
// partition healed, after the node had fenced and discarded the session; the
// flush then wrote the session, and a peer that had meanwhile started the
// session afresh (acknowledged) lost its writes: its creation found the late
// record and was dropped. Now the late record is void: the creation reports
// ErrCreationLapsed and writes nothing, and the peer's creation starts the
// session over the record once the node has renewed its lease.
func TestRecordLandingAfterAFenceIsVoid(t *testing.T) {
	t.Parallel()
	open := keyspaceStores(t)
	open(true)
	ctx := context.Background()
	st := &fenceDuringCreate{Store: open(false)}
	a, err := New(Config{NodeID: "a", LeaseTTL: 3 * time.Second, MaxClockSkew: 20 * time.Millisecond}, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx, false)
	time.Sleep(100 * time.Millisecond) // the record's stamp is well past a's lease start
	st.during = func() { st.during = nil; a.fence() }
	if _, err := a.EnsureOwned(ctx, "late"); !errors.Is(err, ErrCreationLapsed) || !errors.Is(err, ErrFenced) {
		t.Fatalf("creation during which the node fenced: %v, want ErrCreationLapsed", err)
	}
	if _, ok := a.Epoch("late"); ok {
		t.Fatal("the node holds a session whose creation outlived its lease")
	}
	// a renews and recovers: its lease now begins after the late record.
	deadline := time.Now().Add(10 * time.Second)
	for a.Fenced() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if a.Fenced() {
		t.Fatal("a did not recover")
	}
	b, err := New(Config{NodeID: "b", LeaseTTL: 3 * time.Second, MaxClockSkew: 20 * time.Millisecond}, open(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx, false)
	e, err := b.EnsureOwned(ctx, "late")
	if err != nil || e != 2 {
		t.Fatalf("a peer's creation over the late record: epoch %d, %v; want 2, nil", e, err)
	}
	if s := b.Stats(); s.VoidRecords != 1 {
		t.Fatalf("void records: %d, want 1", s.VoidRecords)
	}
	o, found, err := st.ReadOwner(ctx, "late")
	if err != nil || !found || o.Node != "b" || o.Epoch != 2 {
		t.Fatalf("ownership row after the peer's creation: %+v %v %v", o, found, err)
	}
	// A late write of a at its void epoch never shows.
	if err := st.WriteSession(ctx, &store.Write{Session: "late", Epoch: 1, Seq: 1 << 40, Items: []store.Item{{Key: "k", Value: []byte("late")}}}); err != nil {
		t.Fatal(err)
	}
	if items, err := st.ReadState(ctx, "late"); err != nil || len(items) != 0 {
		t.Fatalf("state after a's late write: %v %v, want none", items, err)
	}
}

// A record of a node that is not live and whose session holds no state (it
// died between recording a new session and its first write) is void too; one
// with state is the other node's session (the create race), and so is a
// record a live node made in its current lease.
func TestCreationOverARecordOfADeadNodeWithNothingWritten(t *testing.T) {
	t.Parallel()
	open := keyspaceStores(t)
	st := open(true)
	ctx := context.Background()
	for _, s := range []string{"empty", "written"} {
		if ok, _, err := st.CreateOwner(ctx, s, "dead", 0, time.Hour); err != nil || !ok {
			t.Fatalf("record %s: %v %v", s, ok, err)
		}
	}
	if err := st.WriteSession(ctx, &store.Write{Session: "written", Epoch: 1, Seq: 1000, Items: []store.Item{{Key: "k", Value: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{NodeID: "b", LeaseTTL: 3 * time.Second}, open(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx, false)
	if e, err := b.EnsureOwned(ctx, "empty"); err != nil || e != 2 {
		t.Fatalf("creation over a dead node's record with nothing written: %d %v", e, err)
	}
	var oe *OwnedElsewhereError
	if _, err := b.EnsureOwned(ctx, "written"); !errors.As(err, &oe) || oe.Owner != "dead" {
		t.Fatalf("creation over a dead node's written session: %v, want OwnedElsewhereError naming dead", err)
	}
}
