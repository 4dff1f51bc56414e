package node

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/holdover/holdover/adapter"
)

// memStore is a commit hook that applies changes to a map per session, the
// way the adapter's persisted state evolves, and can be told to refuse.
type memStore struct {
	mu     sync.Mutex
	items  map[string]map[string]string
	refuse error
	calls  int
}

func newMemStore() *memStore { return &memStore{items: map[string]map[string]string{}} }

func (m *memStore) hook(id string, changes []adapter.Change, ended bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.refuse != nil {
		return m.refuse
	}
	if ended {
		delete(m.items, id)
		return nil
	}
	if m.items[id] == nil {
		m.items[id] = map[string]string{}
	}
	for _, c := range changes {
		if c.Delete {
			delete(m.items[id], c.Key)
		} else {
			m.items[id][c.Key] = string(c.Value)
		}
	}
	return nil
}

func (m *memStore) persisted(id string) []adapter.Item {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []adapter.Item
	for _, k := range slices.Sorted(maps.Keys(m.items[id])) {
		out = append(out, adapter.Item{Key: k, Value: []byte(m.items[id][k])})
	}
	return out
}

func commitOK(t *testing.T, tx *Tx) uint64 {
	t.Helper()
	v, err := tx.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTableCommitsExactlyTheChangedItems(t *testing.T) {
	st := newMemStore()
	var last []adapter.Change
	tb := NewTable(func(id string, ch []adapter.Change, ended bool) error {
		last = ch
		return st.hook(id, ch, ended)
	})
	tx := tb.Begin("s")
	tx.Create(map[string]string{"a": "1", "b": "2"}, nil)
	if v := commitOK(t, tx); v != 1 {
		t.Fatalf("version after create = %d", v)
	}
	tx = tb.Begin("s")
	tx.SetAttrs(map[string]string{"a": "1", "b": "3"}) // a unchanged
	commitOK(t, tx)
	if got := keys(last); !slices.Equal(got, []string{"attr/b", "meta/version"}) {
		t.Fatalf("update committed %v", got)
	}
	tx = tb.Begin("s")
	tx.Append("e0")
	commitOK(t, tx)
	tx = tb.Begin("s")
	tx.Append("e1")
	commitOK(t, tx)
	if got := keys(last); !slices.Equal(got, []string{"hist/00000001", "meta/version"}) {
		t.Fatalf("append committed %v", got)
	}

	// The persisted items decode to the table's session.
	s, unknown, err := decodeSession("s", st.persisted("s"))
	if err != nil || unknown != 0 {
		t.Fatal(err, unknown)
	}
	want := tb.Get("s")
	if s.Version != 4 || want.Version != 4 || !maps.Equal(s.Attrs, want.Attrs) || !slices.Equal(s.History, want.History) {
		t.Fatalf("persisted %+v, table %+v", s, want)
	}

	// Create over a reused ID replaces every old item.
	tx = tb.Begin("s2")
	tx.Create(map[string]string{"b": "new"}, keys(st.persisted("s")))
	commitOK(t, tx)
	wantCh := []string{"attr/a", "attr/b", "hist/00000000", "hist/00000001", "meta/version"}
	if got := keys(last); !slices.Equal(got, wantCh) {
		t.Fatalf("create over committed %v, want %v", got, wantCh)
	}
	for _, c := range last {
		if del := c.Key == "attr/a" || c.Key[:5] == "hist/"; c.Delete != del {
			t.Fatalf("change %+v: delete should be %v", c, del)
		}
	}
}

func keys(items any) []string {
	var out []string
	switch v := items.(type) {
	case []adapter.Change:
		for _, c := range v {
			out = append(out, c.Key)
		}
	case []adapter.Item:
		for _, c := range v {
			out = append(out, c.Key)
		}
	}
	slices.Sort(out)
	return out
}

func TestTableRefusedCommitAppliesNothing(t *testing.T) {
	st := newMemStore()
	tb := NewTable(st.hook)
	tx := tb.Begin("s")
	tx.Create(map[string]string{"a": "1"}, nil)
	commitOK(t, tx)
	before := tb.Get("s")

	full := errors.New("buffer full")
	st.refuse = full
	for _, mutate := range []func(*Tx){
		func(tx *Tx) { tx.SetAttrs(map[string]string{"a": "2", "b": "x"}) },
		func(tx *Tx) { tx.Append("entry") },
		func(tx *Tx) { tx.End() },
	} {
		tx := tb.Begin("s")
		mutate(tx)
		if _, err := tx.Commit(); !errors.Is(err, full) {
			t.Fatalf("commit error = %v", err)
		}
		got := tb.Get("s")
		if got != before || got.Version != 1 || len(got.Attrs) != 1 || got.Attrs["a"] != "1" || len(got.History) != 0 {
			t.Fatalf("refused commit changed the session: %+v", got)
		}
	}
	tx = tb.Begin("new")
	tx.Create(nil, nil)
	if _, err := tx.Commit(); !errors.Is(err, full) || tb.Get("new") != nil || tb.Len() != 1 {
		t.Fatalf("refused create: err %v, resident %d", err, tb.Len())
	}
	st.refuse = nil
	tx = tb.Begin("s")
	tx.Append("after")
	if v := commitOK(t, tx); v != 2 {
		t.Fatalf("version after a refused commit = %d, want 2", v)
	}
}

func TestTableOrdersEventsPerSession(t *testing.T) {
	st := newMemStore()
	tb := NewTable(st.hook)
	const sessions, events = 8, 200
	var wg sync.WaitGroup
	for s := range sessions {
		id := "s" + strconv.Itoa(s)
		tx := tb.Begin(id)
		tx.Create(nil, nil)
		commitOK(t, tx)
		for w := range 4 { // four writers per session
			wg.Add(1)
			go func() {
				defer wg.Done()
				for e := range events {
					tx := tb.Begin(id)
					tx.Append(fmt.Sprintf("w%d-%d", w, e))
					if _, err := tx.Commit(); err != nil {
						t.Error(err)
					}
					_ = tb.Get(id).History // concurrent readers
				}
			}()
		}
	}
	wg.Wait()
	for s := range sessions {
		id := "s" + strconv.Itoa(s)
		got := tb.Get(id)
		if got.Version != 1+4*events || len(got.History) != 4*events {
			t.Fatalf("%s: version %d, %d entries", id, got.Version, len(got.History))
		}
		p, _, err := decodeSession(id, st.persisted(id))
		if err != nil || !slices.Equal(p.History, got.History) {
			t.Fatalf("%s: persisted history differs: %v", id, err)
		}
		// Each writer's entries appear in its own order.
		next := map[byte]int{}
		for _, e := range got.History {
			var w, n int
			fmt.Sscanf(e, "w%d-%d", &w, &n)
			if n != next[byte(w)] {
				t.Fatalf("%s: entry %s out of order", id, e)
			}
			next[byte(w)]++
		}
	}
}

func TestTableEvict(t *testing.T) {
	st := newMemStore()
	tb := NewTable(st.hook)
	for _, id := range []string{"a", "b"} {
		tx := tb.Begin(id)
		tx.Create(nil, nil)
		commitOK(t, tx)
	}
	if n := tb.Evict("a", "zzz"); n != 1 || tb.Get("a") != nil || tb.Get("b") == nil || tb.Len() != 1 {
		t.Fatalf("evicted %d, resident %d", n, tb.Len())
	}
	calls := st.calls
	tx := tb.Begin("a")
	if tx.Resident() {
		t.Fatal("evicted session still resident")
	}
	tx.Rollback()
	if st.calls != calls {
		t.Fatal("eviction committed something")
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.rows) != 1 {
		t.Fatalf("%d rows left, want 1", len(tb.rows))
	}
}

func TestDecodeSessionRejectsBrokenState(t *testing.T) {
	item := func(k, v string) adapter.Item { return adapter.Item{Key: k, Value: []byte(v)} }
	for name, items := range map[string][]adapter.Item{
		"no version":  {item("attr/a", "1")},
		"bad version": {item("meta/version", "x")},
		"history gap": {item("hist/00000000", "a"), item("hist/00000002", "c"), item("meta/version", "3")},
	} {
		if _, _, err := decodeSession("s", items); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	s, unknown, err := decodeSession("s", []adapter.Item{item("attr/x/y", "1"), item("meta/version", "7"), item("other", "?")})
	if err != nil || unknown != 1 || s.Version != 7 || s.Attrs["x/y"] != "1" {
		t.Fatalf("decoded %+v, %d unknown, %v", s, unknown, err)
	}
}
