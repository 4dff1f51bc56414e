package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/store"
)

// TestFenceSessionsShadowsOlderEpochs: fences sent together in one request
// each shadow every older write of their session, including the late
// flushes of the fenced owner, and keep the items restored; a session's
// later writes at the new epoch show.
func TestFenceSessionsShadowsOlderEpochs(t *testing.T) {
	t.Parallel()
	st := open(t)
	var fs []store.Fencing
	for i := range 8 {
		s := fmt.Sprintf("gf-%d", i)
		write(t, st, store.Write{Session: s, Epoch: 1, Seq: 100, Items: []store.Item{{Key: "a", Value: []byte("1")}, {Key: "gone", Value: []byte("g")}}})
		// The adopter restores what it read: a, but not gone (written after
		// its read, by the owner it fences).
		fs = append(fs, store.Fencing{Session: s, Epoch: 2, Items: []store.Item{{Key: "a", Value: []byte("1")}}})
	}
	errs := make([]error, len(fs))
	st.FenceSessions(ctx(t), fs, errs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: %v", fs[i].Session, err)
		}
	}
	for _, f := range fs {
		// The fenced owner's late flushes, with its clock far ahead: a new
		// key, an overwrite and an End.
		write(t, st, store.Write{Session: f.Session, Epoch: 1, Seq: 1<<store.SeqBits - 10, Items: []store.Item{{Key: "zombie", Value: []byte("z")}, {Key: "a", Value: []byte("stale")}}})
		if got := read(t, st, f.Session); len(got) != 1 || string(got["a"]) != "1" {
			t.Fatalf("%s after the fenced owner's late flush: %q, want only a=1", f.Session, got)
		}
		write(t, st, store.Write{Session: f.Session, Epoch: 1, Seq: 1<<store.SeqBits - 4, Ended: true})
		if got := read(t, st, f.Session); len(got) != 1 || string(got["a"]) != "1" {
			t.Fatalf("%s after the fenced owner's late End: %q, want only a=1", f.Session, got)
		}
		write(t, st, store.Write{Session: f.Session, Epoch: 2, Seq: 2, Items: []store.Item{{Key: "b", Value: []byte("new")}}})
		if got := read(t, st, f.Session); len(got) != 2 || string(got["b"]) != "new" {
			t.Fatalf("%s: a write at the new epoch does not show: %q", f.Session, got)
		}
	}
}

// TestFenceSessionsReportsEachSession: a fence the store refuses fails
// alone, and a group Cassandra refuses as a whole (over
// batch_size_fail_threshold, 50 KiB) is fenced one session at a time, each
// a single-partition batch, which that limit spares.
func TestFenceSessionsReportsEachSession(t *testing.T) {
	t.Parallel()
	st := open(t)
	big := bytes.Repeat([]byte("x"), 30<<10)
	fs := []store.Fencing{
		{Session: "rf-ok", Epoch: 2, Items: []store.Item{{Key: "k", Value: []byte("v")}}},
		{Session: strings.Repeat("s", 200), Epoch: 2},
		{Session: "rf-epoch", Epoch: 0},
		{Session: "rf-big-1", Epoch: 3, Items: []store.Item{{Key: "k", Value: big}}},
		{Session: "rf-big-2", Epoch: 3, Items: []store.Item{{Key: "k", Value: big}}},
	}
	errs := make([]error, len(fs))
	st.FenceSessions(ctx(t), fs, errs)
	var le *store.LimitError
	if !errors.As(errs[1], &le) || le.Field != "session ID" {
		t.Errorf("over-long session ID: %v, want a LimitError on the session ID", errs[1])
	}
	if errs[2] == nil || !strings.Contains(errs[2].Error(), "epoch 0") {
		t.Errorf("epoch 0: %v, want it refused", errs[2])
	}
	for _, i := range []int{0, 3, 4} {
		if errs[i] != nil {
			t.Errorf("%s: %v", fs[i].Session, errs[i])
		}
		write(t, st, store.Write{Session: fs[i].Session, Epoch: 1, Seq: 1<<store.SeqBits - 2, Items: []store.Item{{Key: "k", Value: []byte("zombie")}}})
		if got := read(t, st, fs[i].Session); !bytes.Equal(got["k"], fs[i].Items[0].Value) {
			t.Errorf("%s: k is %d bytes after a late older write, want the %d restored", fs[i].Session, len(got["k"]), len(fs[i].Items[0].Value))
		}
	}
}

// TestReadStates: several sessions read in one request each get their own
// items in key order, an empty or unknown session none, a session named
// twice its items twice; a row that cannot be decoded and an over-long ID
// fail their session only.
func TestReadStates(t *testing.T) {
	t.Parallel()
	st := open(t)
	write(t, st, store.Write{Session: "rs-a", Epoch: 1, Seq: 10, Items: []store.Item{{Key: "b", Value: []byte("2")}, {Key: "a", Value: []byte("1")}}})
	write(t, st, store.Write{Session: "rs-b", Epoch: 1, Seq: 10, Items: []store.Item{{Key: "k", Value: []byte("v")}}})
	write(t, st, store.Write{Session: "rs-empty", Epoch: 1, Seq: 10, Items: []store.Item{{Key: "k", Value: nil}}})
	write(t, st, store.Write{Session: "rs-bad", Epoch: 1, Seq: 10, Items: []store.Item{{Key: "k", Value: []byte("v")}}})
	s := cassandratest.Session(t, st.Keyspace())
	if err := s.Query(`INSERT INTO state (session, key, value, format) VALUES ('rs-bad', 'l', 0x00, 9)`).Exec(); err != nil {
		t.Fatal(err)
	}
	sessions := []string{"rs-a", "rs-missing", "rs-bad", strings.Repeat("s", 200), "rs-b", "rs-empty", "rs-a"}
	items := make([][]store.Item, len(sessions))
	errs := make([]error, len(sessions))
	st.ReadStates(ctx(t), sessions, items, errs)
	show := func(items []store.Item) string {
		var b strings.Builder
		for _, it := range items {
			fmt.Fprintf(&b, "%s=%q ", it.Key, it.Value)
		}
		return b.String()
	}
	want := map[int]string{0: `a="1" b="2" `, 1: ``, 4: `k="v" `, 5: `k="" `, 6: `a="1" b="2" `}
	for i, w := range want {
		if errs[i] != nil || show(items[i]) != w {
			t.Errorf("%s: %s%v, want %s", sessions[i], show(items[i]), errs[i], w)
		}
	}
	if !errors.Is(errs[2], store.ErrCorrupt) || items[2] != nil {
		t.Errorf("rs-bad: %v %v, want ErrCorrupt and no items", items[2], errs[2])
	}
	var le *store.LimitError
	if !errors.As(errs[3], &le) {
		t.Errorf("over-long session ID: %v, want a LimitError", errs[3])
	}
	if &items[0][0] == &items[6][0] {
		t.Error("a session named twice shares its slice of items")
	}
}
