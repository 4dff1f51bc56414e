package store_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/holdover/holdover/internal/store"
)

// A session that deletes many items leaves a row tombstone for each, and
// Cassandra fails a read that scans more than its tombstone_failure_threshold
// (100,000 by default): such a session could never be read, so never
// adopted, and a failover lost it. The store writes a session whole once
// its deletes reach RebaseDeletes, above a partition tombstone that shadows
// them. Here 110,000 deletes (half of the writes grouped with another
// session's): with the rebase the session reads back as written; with it
// turned off (-1) the read fails, as every read of it did before.
func TestASessionThatDeletesManyItemsStaysReadable(t *testing.T) {
	t.Parallel()
	run := func(rebase int) (map[string][]byte, error) {
		st := open(t, func(o *store.Options) { o.RebaseDeletes = rebase })
		c := ctx(t)
		write(t, st, store.Write{Session: "s", Epoch: 1, Seq: 2, Items: []store.Item{
			{Key: "a", Value: []byte("0")}, {Key: "b", Value: []byte("kept")}, {Key: "c", Value: []byte("deleted last")}}})
		seq := uint64(2)
		for i := range 220 {
			seq += 2
			items := make([]store.Item, 0, 502)
			for k := range 500 {
				items = append(items, store.Item{Key: fmt.Sprintf("gone-%d-%d", i, k), Delete: true})
			}
			items = append(items, store.Item{Key: "a", Value: []byte(fmt.Sprint(i + 1))})
			if i == 219 {
				items = append(items, store.Item{Key: "c", Delete: true})
			}
			w := &store.Write{Session: "s", Epoch: 1, Seq: seq, Items: items}
			if i%2 == 0 {
				if err := st.WriteSession(c, w); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
				continue
			}
			other := &store.Write{Session: fmt.Sprintf("other-%d", i), Epoch: 1, Seq: 2, Items: []store.Item{{Key: "k", Value: []byte("v")}}}
			errs := make([]error, 2)
			st.WriteSessions(c, []*store.Write{w, other}, errs)
			if errs[0] != nil || errs[1] != nil {
				t.Fatalf("grouped write %d: %v", i, errs)
			}
		}
		items, err := st.ReadState(c, "s")
		if err != nil {
			return nil, err
		}
		got := map[string][]byte{}
		for _, it := range items {
			got[it.Key] = it.Value
		}
		return got, nil
	}
	got, err := run(0) // the default, 10,000
	if err != nil {
		t.Fatalf("read after 110,000 deletes: %v", err)
	}
	if len(got) != 2 || string(got["a"]) != "220" || string(got["b"]) != "kept" {
		t.Fatalf("read after 110,000 deletes: %q, want a=220 and b=kept", got)
	}
	if _, err := run(-1); err == nil || !strings.Contains(err.Error(), "TOMBSTONES") {
		t.Fatalf("without the rebase the read gave %v; the test no longer reaches Cassandra's tombstone threshold", err)
	}
}

func TestRebaseDeletesOutsideItsRangeIsRefused(t *testing.T) {
	t.Parallel()
	_, err := store.Open(ctx(t), store.Options{Keyspace: "k", RebaseDeletes: -2})
	if err == nil || !strings.Contains(err.Error(), "RebaseDeletes -2") || !strings.Contains(err.Error(), "-1") {
		t.Fatalf("RebaseDeletes -2: %v, want an error naming the field and what it takes", err)
	}
}

// A snapshot the buffer split goes in parts of one Seq, written one after
// the other. A part that is not the last is never written whole: the rewrite
// puts the persisted values at Seq+1, where a later part's new value of the
// same key would tie with it, and at equal timestamps Cassandra keeps the
// greater value, "old" over "new" here.
func TestAPartOfASplitSnapshotIsNotWrittenWhole(t *testing.T) {
	t.Parallel()
	st := open(t, func(o *store.Options) { o.RebaseDeletes = 3 })
	c := ctx(t)
	write(t, st, store.Write{Session: "s", Epoch: 1, Seq: 2, Items: []store.Item{{Key: "k", Value: []byte("old")}}})
	parts := []store.Write{
		{Session: "s", Epoch: 1, Seq: 4, More: true, Items: []store.Item{{Key: "d1", Delete: true}, {Key: "d2", Delete: true}, {Key: "d3", Delete: true}}},
		{Session: "s", Epoch: 1, Seq: 4, Items: []store.Item{{Key: "k", Value: []byte("new")}}},
	}
	for i := range parts {
		if err := st.WriteSession(c, &parts[i]); err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
	}
	if got := read(t, st, "s"); len(got) != 1 || string(got["k"]) != "new" {
		t.Fatalf("after the split snapshot: %q, want k=new", got)
	}
	// The count carries over: the next write with a delete is written whole.
	write(t, st, store.Write{Session: "s", Epoch: 1, Seq: 6, Items: []store.Item{{Key: "d4", Delete: true}, {Key: "j", Value: []byte("v")}}})
	if got := read(t, st, "s"); len(got) != 2 || string(got["k"]) != "new" || string(got["j"]) != "v" {
		t.Fatalf("after the next write: %q, want k=new and j=v", got)
	}
}
