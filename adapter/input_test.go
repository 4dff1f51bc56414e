package adapter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/buffer"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// TestInvalidUTF8InputIsRefused: session IDs and keys are Cassandra text. One
// that is not valid UTF-8 is refused at the call with ErrInvalidInput naming the
// field; before, Commit accepted it and Cassandra refused the flush, dropping
// the session's whole snapshot (an End included). Nothing of a refused call is
// applied, and the sessions committed alongside persist.
func TestInvalidUTF8InputIsRefused(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	var (
		mu      sync.Mutex
		dropped []string
	)
	a := openNode(t, testConfig(t, "a", ks), WithHooks(Hooks{OnDropped: func(session string, items int, err error) {
		mu.Lock()
		dropped = append(dropped, fmt.Sprintf("%s: %d items: %v", session, items, err))
		mu.Unlock()
	}}))
	ctx := context.Background()
	if err := a.Commit("ended", put("old", "1")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)

	if err := a.Commit("ok", put("k", "kept")); err != nil {
		t.Fatal(err)
	}
	if err := a.End("ended"); err != nil {
		t.Fatal(err)
	}
	refused := func(call string, err error, field string) {
		t.Helper()
		var le *LimitError
		if !errors.As(err, &le) || !errors.Is(err, ErrInvalidInput) || le.Field != field ||
			!strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), "valid UTF-8") {
			t.Errorf("%s: %v; want ErrInvalidInput naming the %s and saying it must be valid UTF-8", call, err, field)
		}
	}
	for _, bad := range []string{"\xff", "call-\xc3", "a\xed\xa0\x80"} {
		refused(fmt.Sprintf("Commit(%q)", bad), a.Commit(bad, put("k", "v")), "session ID")
		// A good change before the bad one is not applied either.
		refused(fmt.Sprintf("Commit(ok, key %q)", bad), a.Commit("ok", put("k", "partial"), put(bad, "v")), "key")
		refused(fmt.Sprintf("Commit(ended, key %q)", bad), a.Commit("ended", put(bad, "v")), "key")
		refused(fmt.Sprintf("End(%q)", bad), a.End(bad), "session ID")
		refused(fmt.Sprintf("CheckNew(%q)", bad), a.CheckNew(bad), "session ID")
		_, err := a.Peek(ctx, bad)
		refused(fmt.Sprintf("Peek(%q)", bad), err, "session ID")
		_, err = a.Adopt(ctx, bad)
		refused(fmt.Sprintf("Adopt(%q)", bad), err, "session ID")
	}
	if err := a.CheckNew("alongside"); err != nil {
		t.Fatalf("CheckNew of a valid new session on an idle node: %v", err)
	}
	if err := a.Commit("alongside", put("k", "v"), put("Grüße 🎉", "ü")); err != nil {
		t.Fatalf("valid UTF-8: %v", err)
	}
	flush(t, a)

	p, err := a.Peek(ctx, "ok")
	if err != nil || len(p.Items) != 1 || string(p.Map()["k"]) != "kept" {
		t.Errorf("ok after refused commits: %+v %v; want k=kept", p, err)
	}
	if p, err := a.Peek(ctx, "alongside"); err != nil || string(p.Map()["k"]) != "v" || string(p.Map()["Grüße 🎉"]) != "ü" {
		t.Errorf("alongside: %+v %v", p, err)
	}
	if p, err := a.Peek(ctx, "ended"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ended: the End was not written: %+v %v", p, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if st := a.Stats().Buffer; st.Drops != 0 || len(dropped) != 0 {
		t.Errorf("drops %d: %v", st.Drops, dropped)
	}
}

// TestEmptyValueIsPresent: a key committed with an empty value is persisted as
// present with a zero-length value; a deleted key is absent.
func TestEmptyValueIsPresent(t *testing.T) {
	t.Parallel()
	a := openNode(t, testConfig(t, "a", cassandratest.Keyspace(t)))
	if err := a.Commit("s", put("emptied", "x"), put("deleted", "x")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	if err := a.Commit("s", Change{Key: "empty"}, Change{Key: "emptied", Value: []byte{}}, Change{Key: "deleted", Delete: true}); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	p, err := a.Peek(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	m := p.Map()
	for _, k := range []string{"empty", "emptied"} {
		if v, ok := m[k]; !ok || len(v) != 0 {
			t.Errorf("%s: present=%v len=%d; want present and empty", k, ok, len(v))
		}
	}
	if _, ok := m["deleted"]; ok || len(m) != 2 {
		t.Errorf("items %v; want empty and emptied only", m)
	}
}

// BenchmarkCommitUpdate is the adapter's Commit of one change to an already
// dirty key (the buffer's BenchmarkCommitUpdate through the façade, input
// checks included), beside the buffer's Commit alone on the same adapter: the
// difference is what the façade adds to the commit path. Nothing is flushed
// while it runs (FlushDelay 1h).
//
//	go test -run x -bench CommitUpdate ./adapter
func BenchmarkCommitUpdate(b *testing.B) {
	cfg := testConfig(b, "bench", cassandratest.Keyspace(b))
	cfg.FlushDelay, cfg.MaxWindow = time.Hour, 2*time.Hour
	a := openNode(b, cfg)
	keys := make([]string, 16)
	for i := range keys {
		keys[i] = fmt.Sprintf("item-%06d", i)
	}
	val := make([]byte, 100)
	for _, k := range keys {
		if err := a.Commit("session-000001", Change{Key: k, Value: val}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("adapter", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			val[0] = byte(i)
			if err := a.Commit("session-000001", Change{Key: keys[i&15], Value: val}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("buffer", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			val[0] = byte(i)
			if err := a.buf.Commit("session-000001", buffer.Change{Key: keys[i&15], Value: val}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
