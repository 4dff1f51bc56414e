package adapter

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/holdover/holdover/buffer"
	"github.com/holdover/holdover/internal/store"
)

// sharedBench is an adapter with one shared family, "settings", and no
// Cassandra: its shared buffer's writes go to write in place of the store,
// and their outcome to the view as flushShared gives it.
func sharedBench(t *testing.T, maxBatch int64, write func(s *buffer.Snapshot, ts int64) error) *Adapter {
	t.Helper()
	fams := Families{{Name: "settings", Shared: true}}
	a := &Adapter{cfg: DefaultConfig(), limits: store.DefaultLimits, fams: newFamilyTable(fams)}
	a.cfg.Families = fams
	a.shared = newSharedViews(a.fams)
	v := a.shared.views["settings"]
	var err error
	a.sharedBuf, err = buffer.New(buffer.Config{
		Delay:         time.Hour, // only Flush writes
		MaxBatchBytes: maxBatch,
		RetryMin:      time.Millisecond,
		RetryMax:      time.Millisecond,
		CheckSession:  a.checkSharedSession,
		CheckChange:   a.checkChange,
	}, func(_ context.Context, s *buffer.Snapshot) error {
		ts := buffer.SeqTime(s.Seq).UnixMicro()
		return a.sharedWritten(v, s, ts, write(s, ts))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = a.sharedBuf.Close(context.Background()) })
	return a
}

// A shared write dropped for good (a permanent error) will never land, but
// the view kept its key as this node's pending write: every re-read passed
// over it, and the view showed the dropped value for good, never what
// Cassandra holds nor another node's later write of the key. After the drop
// the key must follow Cassandra again.
func TestADroppedSharedWriteNoLongerHidesOtherNodesWrites(t *testing.T) {
	const s = "settings:dropped"
	refuse := false
	a := sharedBench(t, 0, func(*buffer.Snapshot, int64) error {
		if refuse {
			return buffer.Permanent(errors.New("refused"))
		}
		return nil
	})
	v := a.shared.views["settings"]
	reread := func(items ...store.SharedItem) []SharedChange {
		a.shared.mu.Lock()
		defer a.shared.mu.Unlock()
		return v.merge(items, time.Now())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.CommitShared(s, put("k", "v1")); err != nil {
		t.Fatal(err)
	}
	if err := a.sharedBuf.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	v1 := v.sessions[s]["k"].ts // where it landed
	refuse = true
	if err := a.CommitShared(s, put("k", "never-written")); err != nil {
		t.Fatal(err)
	}
	if err := a.sharedBuf.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := a.sharedBuf.Stats(); st.Drops != 1 {
		t.Fatalf("the refused write was not dropped (%d drops): the test proves nothing", st.Drops)
	}
	// Cassandra still holds v1; then another node writes the key.
	reread(store.SharedItem{Session: s, Key: "k", Value: []byte("v1"), WriteTime: v1})
	if m, _ := a.Shared(s); string(m["k"]) != "v1" {
		t.Errorf("after its write was dropped, the view shows k = %q, not v1 that Cassandra holds", m["k"])
	}
	changes := reread(store.SharedItem{Session: s, Key: "k", Value: []byte("from-b"), WriteTime: v1 + 1000})
	if m, _ := a.Shared(s); string(m["k"]) != "from-b" {
		t.Errorf("the view shows k = %q, not another node's later write from-b (reported: %+v)", m["k"], changes)
	}
}
