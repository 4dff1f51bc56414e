package adapter

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/holdover/holdover/buffer"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/store"
)

// behindClock is the system clock an hour behind: a node whose clock lags the
// node that ended a session issues lower sequences.
type behindClock struct{}

func (behindClock) Now() time.Time { return time.Now().Add(-time.Hour) }
func (behindClock) AfterFunc(d time.Duration, f func()) buffer.Timer {
	return time.AfterFunc(d, f)
}

// A session adopted at least once (epoch 2) is ended, then started afresh by
// the host: the End's tombstone was written at epoch 2, so a fresh session at
// epoch 1 would write below it and lose every write. The fresh session must
// rank above everything that ended it.
func TestRecreatedAfterEndKeepsWrites(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	ctx := context.Background()
	a := openNode(t, testConfig(t, "a", ks))
	if err := a.Commit("again", put("k", "first life")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	a.crash()
	b := openNode(t, testConfig(t, "b", ks))
	if s := adoptEventually(t, b, "again"); s.Epoch != 2 {
		t.Fatalf("adopted at epoch %d, want 2", s.Epoch)
	}
	if err := b.End("again"); err != nil {
		t.Fatal(err)
	}
	flush(t, b)
	if _, err := b.Peek(ctx, "again"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("peek of the ended session: %v", err)
	}
	if err := b.Commit("again", put("k", "second life")); err != nil {
		t.Fatal(err)
	}
	flush(t, b)
	c := openNode(t, testConfig(t, "c", ks))
	p, err := c.Peek(ctx, "again")
	if err != nil || string(p.Map()["k"]) != "second life" || p.Owner != "b" {
		t.Fatalf("peek of the session started afresh: %+v %v", p, err)
	}
}

// The same at epoch 1: node a creates and ends a session; node b, whose clock
// is an hour behind, starts it afresh with lower sequences than a's End.
func TestRecreatedByLaggingNodeKeepsWrites(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	ctx := context.Background()
	a := openNode(t, testConfig(t, "a", ks))
	if err := a.Commit("skew", put("k", "a's")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	if err := a.End("skew"); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	b := openNode(t, testConfig(t, "b", ks), func(o *options) { o.clock = behindClock{} })
	if err := b.Commit("skew", put("k", "b's")); err != nil {
		t.Fatal(err)
	}
	flush(t, b)
	p, err := a.Peek(ctx, "skew")
	if err != nil || string(p.Map()["k"]) != "b's" || p.Owner != "b" {
		t.Fatalf("peek of the session b started afresh: %+v %v", p, err)
	}
	// An ended session never comes back: adopting it after its End is
	// ErrNotFound, even for a node that read it before the End.
	if err := b.End("skew"); err != nil {
		t.Fatal(err)
	}
	flush(t, b)
	if _, err := a.Adopt(ctx, "skew", AdoptOptions{Force: true}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("forced adopt of an ended session: %v", err)
	}
}

// A write of the old epoch that lands after the End (a hedged duplicate or a
// retry of the node that ended the session) must not show in the session
// started afresh: its first write fences every epoch below it, in the same
// batch.
func TestRecreatedFencesStrayWritesOfTheEndedSession(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	ctx := context.Background()
	a := openNode(t, testConfig(t, "a", ks))
	if err := a.Commit("stray", put("k", "first life")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	if err := a.End("stray"); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	// Epoch 1, sequences far above the End's: only a fence hides it.
	late := &store.Write{Session: "stray", Epoch: 1, Seq: 1<<store.SeqBits - 8, Items: []store.Item{{Key: "old", Value: []byte("stray")}}}
	if err := a.store.WriteSession(ctx, late); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit("stray", put("k", "second life")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	b := openNode(t, testConfig(t, "b", ks))
	p, err := b.Peek(ctx, "stray")
	if err != nil {
		t.Fatal(err)
	}
	if m := p.Map(); len(m) != 1 || string(m["k"]) != "second life" {
		t.Fatalf("the session started afresh shows %q, want only k=second life", m)
	}
}
