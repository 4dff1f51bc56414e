package store_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/store"
)

func writeShared(t *testing.T, st *store.Store, w store.SharedWrite) {
	t.Helper()
	if err := st.WriteShared(ctx(t), &w); err != nil {
		t.Fatalf("write shared %s/%s at %d: %v", w.Family, w.Session, w.TS, err)
	}
}

// readShared returns family's items by "session/key".
func readShared(t *testing.T, st *store.Store, family string) map[string]store.SharedItem {
	t.Helper()
	items, err := st.ReadShared(ctx(t), family)
	if err != nil {
		t.Fatalf("read shared %s: %v", family, err)
	}
	m := make(map[string]store.SharedItem, len(items))
	for _, it := range items {
		m[it.Session+"/"+it.Key] = it
	}
	return m
}

func put(key, value string) store.Item { return store.Item{Key: key, Value: []byte(value)} }

// wantShared fails t unless got holds exactly want's items ("session/key" to
// value).
func wantShared(t *testing.T, got map[string]store.SharedItem, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("items %v, want %v", got, want)
	}
	for k, v := range want {
		if it, ok := got[k]; !ok || string(it.Value) != v {
			t.Errorf("%s: present=%v value %q, want %q", k, ok, it.Value, v)
		}
	}
}

// TestSharedLastWriterWins: each key ends with the value of the highest write
// timestamp, whichever write arrived first, and is stored at TS+1.
func TestSharedLastWriterWins(t *testing.T) {
	t.Parallel()
	st := openShared(t)
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "s", TS: 200, Items: []store.Item{put("newer-first", "200")}})
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "s", TS: 100, Items: []store.Item{put("newer-first", "100"), put("older-first", "100")}})
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "s", TS: 200, Items: []store.Item{put("older-first", "200")}})
	got := readShared(t, st, "f")
	wantShared(t, got, map[string]string{"s/newer-first": "200", "s/older-first": "200"})
	for k, it := range got {
		if it.WriteTime != 201 {
			t.Errorf("%s: write time %d, want 201 (TS+1)", k, it.WriteTime)
		}
	}
}

// TestSharedDeleteByTimestamp: a delete of one key wins over a put at an
// earlier timestamp or at the same one, and loses to one at a later timestamp,
// in either order of arrival.
func TestSharedDeleteByTimestamp(t *testing.T) {
	t.Parallel()
	st := openShared(t)
	del := func(key string) store.Item { return store.Item{Key: key, Delete: true} }
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "s", TS: 100, Items: []store.Item{put("later-delete", "v")}})
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "s", TS: 200, Items: []store.Item{del("later-delete")}})
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "s", TS: 300, Items: []store.Item{put("earlier-delete", "v")}})
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "s", TS: 100, Items: []store.Item{del("earlier-delete")}})
	// The delete arrives first and still wins over the older put after it.
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "s", TS: 400, Items: []store.Item{del("delete-first")}})
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "s", TS: 300, Items: []store.Item{put("delete-first", "v")}})
	// At one timestamp a delete wins (Cassandra's rule), so both go at TS+1.
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "s", TS: 500, Items: []store.Item{del("same-ts")}})
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "s", TS: 500, Items: []store.Item{put("same-ts", "v")}})
	wantShared(t, readShared(t, st, "f"), map[string]string{"s/earlier-delete": "v"})
}

// TestSharedEnded: an End deletes every key of its session written before its
// timestamp, not another session's and not the items of its own write (at
// TS+1); an End at an earlier timestamp deletes nothing newer.
func TestSharedEnded(t *testing.T) {
	t.Parallel()
	st := openShared(t)
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "ended", TS: 100, Items: []store.Item{put("a", "1"), put("b", "1")}})
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "other", TS: 100, Items: []store.Item{put("a", "1")}})
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "late", TS: 300, Items: []store.Item{put("a", "1")}})
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "ended", TS: 200, Ended: true, Items: []store.Item{put("c", "2")}})
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "late", TS: 200, Ended: true})
	got := readShared(t, st, "f")
	wantShared(t, got, map[string]string{"ended/c": "2", "other/a": "1", "late/a": "1"})
	if w := got["ended/c"].WriteTime; w != 201 {
		t.Errorf("ended/c: write time %d, want 201", w)
	}
}

// TestSharedTTL: a shared write's values expire after its TTL (rounded up to
// whole seconds: 500 ms is 1 s, not 0, which would be no TTL); a write with no
// TTL of its own takes StateTTL.
func TestSharedTTL(t *testing.T) {
	t.Parallel()
	st := openShared(t, func(o *store.Options) { o.StateTTL = time.Hour })
	start := time.Now()
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "short", TS: 100, TTL: 2 * time.Second, Items: []store.Item{put("k", "v"), {Key: "empty"}}})
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "sub-second", TS: 100, TTL: 500 * time.Millisecond, Items: []store.Item{put("k", "v")}})
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "default", TS: 100, Items: []store.Item{put("k", "v")}})
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the writes took %s: too slow for this test's TTL timing", d)
	}
	s := cassandratest.Session(t, st.Keyspace())
	for session, want := range map[string][2]int{"short": {1, 2}, "default": {3500, 3600}} {
		var ttl *int
		if err := s.Query(`SELECT TTL(value) FROM shared WHERE family = 'f' AND session = ? AND key = 'k'`, session).Scan(&ttl); err != nil {
			t.Fatalf("%s: %v", session, err)
		}
		if ttl == nil || *ttl < want[0] || *ttl > want[1] {
			t.Errorf("%s: TTL %v s, want %d..%d", session, ttl, want[0], want[1])
		}
	}
	time.Sleep(time.Until(start.Add(3500 * time.Millisecond)))
	wantShared(t, readShared(t, st, "f"), map[string]string{"default/k": "v"})
}

// TestSharedEmptyValue: an empty value is a present item with a write time,
// not a delete; written nil or empty, or over a value.
func TestSharedEmptyValue(t *testing.T) {
	t.Parallel()
	st := openShared(t)
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "s", TS: 100, Items: []store.Item{put("emptied", "v"), put("deleted", "v")}})
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "s", TS: 200, Items: []store.Item{
		{Key: "nil"}, {Key: "empty", Value: []byte{}}, {Key: "emptied", Value: []byte{}}, {Key: "deleted", Delete: true},
	}})
	got := readShared(t, st, "f")
	wantShared(t, got, map[string]string{"s/nil": "", "s/empty": "", "s/emptied": ""})
	for k, it := range got {
		if it.WriteTime != 201 {
			t.Errorf("%s: write time %d, want 201", k, it.WriteTime)
		}
	}
}

// TestSharedFamiliesAreSeparate: families with the same sessions and keys do
// not see each other's writes or Ends, and ReadShared returns one family in
// (session, key) order.
func TestSharedFamiliesAreSeparate(t *testing.T) {
	t.Parallel()
	st := openShared(t)
	for _, f := range []string{"one", "two"} {
		writeShared(t, st, store.SharedWrite{Family: f, Session: "s", TS: 100, Items: []store.Item{put("b", f), put("a", f)}})
		writeShared(t, st, store.SharedWrite{Family: f, Session: "r", TS: 100, Items: []store.Item{put("a", f)}})
	}
	writeShared(t, st, store.SharedWrite{Family: "one", Session: "s", TS: 200, Ended: true})
	wantShared(t, readShared(t, st, "one"), map[string]string{"r/a": "one"})
	items, err := st.ReadShared(ctx(t), "two")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, it := range items {
		order = append(order, it.Session+"/"+it.Key+"="+string(it.Value))
	}
	if got := strings.Join(order, " "); got != "r/a=two s/a=two s/b=two" {
		t.Errorf("family two: %s, want r/a=two s/a=two s/b=two", got)
	}
	if got := readShared(t, st, "three"); len(got) != 0 {
		t.Errorf("a family never written has items %v", got)
	}
}

// TestSharedRefusesBadInput: a write over the limits, with an empty family or
// with a timestamp out of range is refused with a permanent error and writes
// nothing.
func TestSharedRefusesBadInput(t *testing.T) {
	t.Parallel()
	st := openShared(t)
	long := strings.Repeat("k", 300)
	for _, c := range []struct {
		name  string
		w     store.SharedWrite
		field string // of the *LimitError; empty for another permanent error
	}{
		{"long key", store.SharedWrite{Family: "f", Session: "s", TS: 100, Items: []store.Item{put("ok", "v"), put(long, "v")}}, "key"},
		{"empty family", store.SharedWrite{Family: "", Session: "s", TS: 100, Items: []store.Item{put("ok", "v")}}, "family"},
		{"invalid family", store.SharedWrite{Family: "\xff", Session: "s", TS: 100, Items: []store.Item{put("ok", "v")}}, "family"},
		{"empty session", store.SharedWrite{Family: "f", Session: "", TS: 100, Items: []store.Item{put("ok", "v")}}, "session ID"},
		{"negative timestamp", store.SharedWrite{Family: "f", Session: "s", TS: -1, Items: []store.Item{put("ok", "v")}}, ""},
	} {
		err := st.WriteShared(ctx(t), &c.w)
		var (
			le *store.LimitError
			p  interface{ Permanent() bool }
		)
		switch {
		case err == nil || !errors.As(err, &p) || !p.Permanent():
			t.Errorf("%s: %v, want a permanent error", c.name, err)
		case c.field != "" && (!errors.As(err, &le) || le.Field != c.field):
			t.Errorf("%s: %v, want a *LimitError on the %s", c.name, err, c.field)
		}
	}
	if got := readShared(t, st, "f"); len(got) != 0 {
		t.Errorf("refused writes wrote %v", got)
	}
	if _, err := st.ReadShared(ctx(t), ""); !errors.Is(err, store.ErrInvalidInput) {
		t.Errorf("ReadShared of an empty family: %v, want ErrInvalidInput", err)
	}
}

// TestSharedTable: a keyspace of a release without the shared table gains it
// at Open with CreateSchema; Tables.Shared names it and is checked like the
// other names.
func TestSharedTable(t *testing.T) {
	t.Parallel()
	var ks string
	old := openShared(t, func(o *store.Options) { ks = o.Keyspace })
	if err := old.Session().Query(fmt.Sprintf(`DROP TABLE %s.shared`, ks)).ExecContext(ctx(t)); err != nil {
		t.Fatalf("make the schema an older release's: %v", err)
	}
	st := openShared(t, func(o *store.Options) { o.Keyspace = ks })
	writeShared(t, st, store.SharedWrite{Family: "f", Session: "s", TS: 100, Items: []store.Item{put("k", "v")}})
	wantShared(t, readShared(t, st, "f"), map[string]string{"s/k": "v"})

	named := openShared(t, func(o *store.Options) { o.Tables = store.Tables{Shared: "settings"} })
	writeShared(t, named, store.SharedWrite{Family: "f", Session: "s", TS: 100, Items: []store.Item{put("k", "v")}})
	var n int
	if err := cassandratest.Session(t, named.Keyspace()).Query(`SELECT COUNT(*) FROM settings WHERE family = 'f'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("rows in the table Tables.Shared names: %d (%v), want 1", n, err)
	}

	hosts, port := cassandratest.Hosts(t)
	_, err := store.Open(ctx(t), store.Options{Hosts: hosts, Port: port, Keyspace: ks, Tables: store.Tables{Shared: "no-dash"}})
	if err == nil || !strings.Contains(err.Error(), `table "no-dash" is not a CQL identifier`) {
		t.Errorf("Open with Tables.Shared %q: %v, want the name refused", "no-dash", err)
	}
}

// openShared opens a store that creates the shared families' table.
func openShared(t *testing.T, tweak ...func(*store.Options)) *store.Store {
	t.Helper()
	return open(t, append(tweak, func(o *store.Options) { o.SharedTable = true })...)
}

// The shared table is created only for a node with a shared family: every
// Open of a fresh keyspace otherwise paid one more CREATE TABLE, which
// pushed Opens under load past their deadlines.
func TestSharedTableOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	tables := func(st *store.Store) []string {
		var names []string
		var name string
		iter := cassandratest.Session(t, st.Keyspace()).Query(`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?`, st.Keyspace()).Iter()
		for iter.Scan(&name) {
			names = append(names, name)
		}
		if err := iter.Close(); err != nil {
			t.Fatal(err)
		}
		return names
	}
	if names := tables(open(t)); slices.Contains(names, "shared") || !slices.Contains(names, "state") {
		t.Errorf("tables without SharedTable: %q, want state and no shared", names)
	}
	if names := tables(openShared(t)); !slices.Contains(names, "shared") {
		t.Errorf("tables with SharedTable: %q, want shared", names)
	}
}
