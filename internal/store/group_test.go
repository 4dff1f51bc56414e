package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/holdover/holdover/internal/store"
)

// TestWriteSessions: one call writes several sessions, each with its own
// outcome: an ended session loses its old items, an item delete applies, a write
// older than what is stored does not win, and a session over the limits is
// refused alone.
func TestWriteSessions(t *testing.T) {
	t.Parallel()
	st := open(t)
	write(t, st, store.Write{Session: "g-ended", Epoch: 1, Seq: 10, Items: []store.Item{{Key: "old", Value: []byte("x")}}})
	write(t, st, store.Write{Session: "g-del", Epoch: 1, Seq: 10, Items: []store.Item{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}})
	write(t, st, store.Write{Session: "g-newer", Epoch: 1, Seq: 50, Items: []store.Item{{Key: "k", Value: []byte("new")}}})

	ws := []*store.Write{
		{Session: "g-plain", Epoch: 1, Seq: 20, Items: []store.Item{{Key: "k", Value: []byte("v")}}},
		{Session: "g-ended", Epoch: 1, Seq: 20, Ended: true, Items: []store.Item{{Key: "new", Value: []byte("y")}}},
		{Session: "g-del", Epoch: 1, Seq: 20, Items: []store.Item{{Key: "a", Delete: true}}},
		{Session: "g-newer", Epoch: 1, Seq: 20, Items: []store.Item{{Key: "k", Value: []byte("stale")}}},
		{Session: "g-bad", Epoch: 1, Seq: 20, Items: []store.Item{{Key: strings.Repeat("k", 300), Value: []byte("v")}}},
		{Session: "g-last", Epoch: 2, Seq: 1, Items: []store.Item{{Key: "k", Value: []byte("v2")}}},
	}
	errs := make([]error, len(ws))
	st.WriteSessions(ctx(t), ws, errs)
	for i, err := range errs {
		if ws[i].Session == "g-bad" {
			var le *store.LimitError
			if !errors.As(err, &le) || le.Field != "key" {
				t.Errorf("g-bad: err %v, want a LimitError on the key", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", ws[i].Session, err)
		}
	}
	want := map[string]map[string]string{
		"g-plain": {"k": "v"},
		"g-ended": {"new": "y"},
		"g-del":   {"b": "2"},
		"g-newer": {"k": "new"},
		"g-bad":   {},
		"g-last":  {"k": "v2"},
	}
	for session, items := range want {
		got := read(t, st, session)
		if len(got) != len(items) {
			t.Errorf("%s: stored %d items %v, want %v", session, len(got), got, items)
		}
		for k, v := range items {
			if !bytes.Equal(got[k], []byte(v)) {
				t.Errorf("%s/%s = %q, want %q", session, k, got[k], v)
			}
		}
	}
}

// TestWriteSessionsOverBatchLimit: a group Cassandra refuses as a whole (a
// multi-partition batch over batch_size_fail_threshold, 50 KiB) is written
// session by session instead, and every session lands.
func TestWriteSessionsOverBatchLimit(t *testing.T) {
	t.Parallel()
	st := open(t)
	big := bytes.Repeat([]byte("x"), 30<<10)
	var ws []*store.Write
	for i := range 3 {
		ws = append(ws, &store.Write{Session: fmt.Sprint("big-", i), Epoch: 1, Seq: 5, Items: []store.Item{{Key: "k", Value: big}}})
	}
	errs := make([]error, len(ws))
	st.WriteSessions(ctx(t), ws, errs)
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", ws[i].Session, err)
		}
		if got := read(t, st, ws[i].Session)["k"]; len(got) != len(big) {
			t.Errorf("%s: stored %d bytes, want %d", ws[i].Session, len(got), len(big))
		}
	}
}
