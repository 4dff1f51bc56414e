package store_test

import (
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/store"
)

// An empty value is a present item whose value has length 0: the buffer hands
// it over with a nil Value, like a delete's, but without Delete. These tests
// hold the store to that: it is read back, and its TTL is renewed like any
// other item's.

// TestEmptyValueRefreshKeepsItem: RefreshState renews an empty value's TTL
// with its original write timestamp, so a resident session keeps it past the
// state TTL. Before, its value cell was null, WRITETIME(value) and TTL(value)
// too, and the refresh skipped it: the item expired.
//
// Timing, with a 4 s TTL (Cassandra expires in whole seconds): written between
// w0 and w, an original expires between w0+3 s and w+4 s; refreshed at w0+2.5 s,
// it lives to w0+5.5 s at least. Read at w+4.5 s (the writes take well under
// 0.4 s), a renewed item is there, an unrenewed one gone.
func TestEmptyValueRefreshKeepsItem(t *testing.T) {
	t.Parallel()
	const ttl = 4 * time.Second
	st := open(t, func(o *store.Options) { o.StateTTL = ttl })
	s := cassandratest.Session(t, st.Keyspace())
	want, _ := store.Timestamp(1, 11)
	first := time.Now()
	items := []store.Item{{Key: "empty", Value: nil}, {Key: "full", Value: []byte("v")}}
	write(t, st, store.Write{Session: "resident", Epoch: 1, Seq: 10, Items: items})
	write(t, st, store.Write{Session: "idle", Epoch: 1, Seq: 10, Items: items}) // not refreshed
	// A row an older version wrote: a null value cell.
	if err := s.Query(`INSERT INTO state (session, key, value, format) VALUES (?, ?, null, 1) USING TIMESTAMP ? AND TTL ?`,
		"resident", "legacy", want, int(ttl/time.Second)).Exec(); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	if d := written.Sub(first); d > 400*time.Millisecond {
		t.Fatalf("the writes took %s: too slow for this test's TTL timing", d)
	}

	time.Sleep(time.Until(first.Add(ttl * 5 / 8)))
	n, err := st.RefreshState(ctx(t), "resident", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("RefreshState renewed %d items, want 3 (the empty values and the other)", n)
	}
	// Renewed at their original write timestamp: a newer write still wins.
	iter := s.Query(`SELECT key, WRITETIME(format) FROM state WHERE session = ?`, "resident").Iter()
	var (
		key string
		ts  int64
	)
	for iter.Scan(&key, &ts) {
		if ts != want {
			t.Errorf("%s renewed at timestamp %d, want the original %d", key, ts, want)
		}
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}

	time.Sleep(time.Until(written.Add(ttl + ttl/8)))
	if got := read(t, st, "idle"); len(got) != 0 {
		t.Fatalf("the unrenewed session still has %d items after its TTL: the test's timing does not hold", len(got))
	}
	got := read(t, st, "resident")
	for _, k := range []string{"empty", "legacy"} {
		if v, ok := got[k]; !ok || len(v) != 0 {
			t.Errorf("%s value after the original TTL: present=%v len=%d; want present and empty (items %v)", k, ok, len(v), got)
		}
	}
	if string(got["full"]) != "v" {
		t.Errorf("full value after the original TTL: %q (items %v)", got["full"], got)
	}
}

// TestEmptyValueIsNotDelete: an empty value and a delete differ. After the
// writes, ReadState returns the empty-valued keys with len(Value) == 0 (one
// written empty from the start, one overwritten with empty) and not the
// deleted one; the empty value is a stored cell, not a null.
func TestEmptyValueIsNotDelete(t *testing.T) {
	t.Parallel()
	st := open(t)
	write(t, st, store.Write{Session: "e", Epoch: 1, Seq: 10, Items: []store.Item{
		{Key: "empty", Value: nil},
		{Key: "emptied", Value: []byte("was set")},
		{Key: "deleted", Value: []byte("was set")},
		{Key: "kept", Value: []byte("v")},
	}})
	write(t, st, store.Write{Session: "e", Epoch: 1, Seq: 12, Items: []store.Item{
		{Key: "emptied", Value: []byte{}},
		{Key: "deleted", Delete: true},
	}})
	items, err := st.ReadState(ctx(t), "e")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	for _, it := range items {
		if it.Delete {
			t.Errorf("ReadState returned %q as a delete", it.Key)
		}
		got[it.Key] = it.Value
	}
	for _, k := range []string{"empty", "emptied"} {
		if v, ok := got[k]; !ok || len(v) != 0 {
			t.Errorf("%s: present=%v len=%d; want present with an empty value", k, ok, len(v))
		}
	}
	if v, ok := got["deleted"]; ok {
		t.Errorf("deleted: present with %q; want absent", v)
	}
	if string(got["kept"]) != "v" || len(got) != 3 {
		t.Errorf("items %v; want empty, emptied and kept", got)
	}
	// The empty value is stored as a zero-length blob, not a null cell (which
	// would be a tombstone, with no write time or TTL of its own).
	s := cassandratest.Session(t, st.Keyspace())
	iter := s.Query(`SELECT key, WRITETIME(value), TTL(value) FROM state WHERE session = ?`, "e").Iter()
	var (
		key     string
		written *int64
		ttl     *int
	)
	for iter.Scan(&key, &written, &ttl) {
		if written == nil || ttl == nil {
			t.Errorf("%s: the value cell is null (no write time or TTL)", key)
		}
		written, ttl = nil, nil
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
}
