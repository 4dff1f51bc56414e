package adapter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/buffer"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

func testConfig(t testing.TB, node, keyspace string) Config {
	t.Helper()
	hosts, port := cassandratest.Hosts(t)
	cfg := DefaultConfig()
	cfg.Hosts, cfg.Port, cfg.Keyspace, cfg.NodeID = hosts, port, keyspace, node
	cfg.FlushDelay = 20 * time.Millisecond
	cfg.LeaseTTL = 3 * time.Second
	// A loaded test machine (parallel packages, -race) may hold a flush for
	// over a second: these tests are not about the window bound, which its
	// own tests cover.
	cfg.MaxWindow = time.Minute
	return cfg
}

func openNode(t testing.TB, cfg Config, opts ...Option) *Adapter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := Open(ctx, cfg, opts...)
	if err != nil {
		t.Fatalf("open node %s: %v", cfg.NodeID, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = a.Close(ctx)
	})
	return a
}

// crash stops a node the way SIGKILL would: nothing more is flushed,
// released or renewed.
func (a *Adapter) crash() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a.buf.Pause()
	_, _ = a.buf.Close(ctx)
	if a.sharedBuf != nil {
		a.sharedBuf.Pause()
		a.closeShared(ctx)
	}
	_ = a.res.Close(context.Background(), false)
	a.store.Close()
}

func flush(t *testing.T, a *Adapter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		t.Fatalf("flush %s: %v", a.NodeID(), err)
	}
}

func put(k, v string) Change { return Change{Key: k, Value: []byte(v)} }

// adoptEventually adopts session on b, waiting for a dead owner's lease to
// expire (AdoptOptions.Wait).
func adoptEventually(t *testing.T, b *Adapter, session string) *Session {
	t.Helper()
	s, err := b.Adopt(context.Background(), session, AdoptOptions{Wait: 20 * time.Second})
	if err != nil {
		t.Fatalf("adopt %s on %s: %v", session, b.NodeID(), err)
	}
	return s
}

func TestCrashThenAdoptRestoresLastCommittedState(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	a := openNode(t, testConfig(t, "a", ks))
	b := openNode(t, testConfig(t, "b", ks))
	want := map[string]map[string]string{}
	for i := 0; i < 50; i++ {
		s := fmt.Sprintf("call-%d", i)
		want[s] = map[string]string{}
		for round := 0; round < 5; round++ { // coalesced updates of the same keys
			v := fmt.Sprintf("r%d", round)
			if err := a.Commit(s, put("state", v), put("peer", s+v)); err != nil {
				t.Fatal(err)
			}
			want[s]["state"], want[s]["peer"] = v, s+v
		}
		if err := a.Commit(s, Change{Key: "peer", Delete: true}); err != nil {
			t.Fatal(err)
		}
		delete(want[s], "peer")
	}
	flush(t, a)
	a.crash()
	for s, items := range want {
		got := adoptEventually(t, b, s)
		m := got.Map()
		if got.PreviousOwner != "a" || got.Epoch != 2 || len(m) != len(items) {
			t.Fatalf("%s adopted as %+v", s, got)
		}
		for k, v := range items {
			if string(m[k]) != v {
				t.Fatalf("%s/%s = %q, want %q", s, k, m[k], v)
			}
		}
	}
	// B carries on: its commits persist above the fence.
	if err := b.Commit("call-0", put("state", "after")); err != nil {
		t.Fatal(err)
	}
	flush(t, b)
	p, err := b.Peek(context.Background(), "call-0")
	if err != nil || string(p.Map()["state"]) != "after" || p.Owner != "b" {
		t.Fatalf("peek after b's commit: %+v %v", p, err)
	}
}

// aheadClock is the system clock a year ahead: the zombie's sequences are far
// above the adopter's.
type aheadClock struct{}

func (aheadClock) Now() time.Time { return time.Now().Add(365 * 24 * time.Hour) }
func (aheadClock) AfterFunc(d time.Duration, f func()) buffer.Timer {
	return time.AfterFunc(d, f)
}

func TestZombieWritesNeverBecomeVisible(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	a := openNode(t, testConfig(t, "a", ks), func(o *options) { o.clock = aheadClock{} })
	b := openNode(t, testConfig(t, "b", ks))
	if err := a.Commit("z", put("k", "v1"), put("other", "o1")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	// A stalls with changes buffered (a GC pause, a partition)...
	a.buf.Pause()
	if err := a.Commit("z", put("k", "zombie"), put("new", "zombie")); err != nil {
		t.Fatal(err)
	}
	// ...B adopts the session (A's lease is live, so the operator forces it)...
	got, err := b.Adopt(context.Background(), "z", AdoptOptions{Force: true})
	if err != nil || string(got.Map()["k"]) != "v1" {
		t.Fatalf("adopt: %+v %v", got, err)
	}
	// ...and A wakes up and flushes its stale changes with its clock a year ahead.
	a.buf.Resume()
	flush(t, a)
	if st := a.Stats().Buffer; st.Flushes < 2 {
		t.Fatalf("the zombie's flush did not run: %+v", st)
	}
	read := func() map[string]string {
		s := cassandratest.Session(t, ks)
		iter := s.Query("SELECT key, value FROM state WHERE session = ?", "z").Iter()
		m := map[string]string{}
		var k string
		var v []byte
		for iter.Scan(&k, &v) {
			m[k] = string(v)
		}
		if err := iter.Close(); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := read(); len(m) != 2 || m["k"] != "v1" || m["other"] != "o1" {
		t.Fatalf("a reader sees %v after the zombie's flush, want k=v1 other=o1", m)
	}
	if err := b.Commit("z", put("k", "v2")); err != nil {
		t.Fatal(err)
	}
	flush(t, b)
	if m := read(); m["k"] != "v2" {
		t.Fatalf("the new owner's write is not visible: %v", m)
	}
}

func TestGracefulCloseReleasesSessions(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	a := openNode(t, testConfig(t, "a", ks))
	b := openNode(t, testConfig(t, "b", ks))
	for i := 0; i < 10; i++ {
		if err := a.Commit(fmt.Sprintf("g%d", i), put("k", "v")); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := a.Close(context.Background()) // no explicit Flush: Close drains
	if err != nil || rep.Released != 10 || len(rep.Unwritten.Sessions) != 0 {
		t.Fatalf("close: %+v %v", rep, err)
	}
	if err := a.Commit("g0", put("k", "late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after close: %v", err)
	}
	if _, err := a.Adopt(context.Background(), "g0"); !errors.Is(err, ErrClosed) {
		t.Fatalf("adopt after close: %v", err)
	}
	if _, err := a.Close(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	began := time.Now()
	for i := 0; i < 10; i++ {
		s, err := b.Adopt(context.Background(), fmt.Sprintf("g%d", i))
		if err != nil || string(s.Map()["k"]) != "v" {
			t.Fatalf("adopt g%d: %+v %v", i, s, err)
		}
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Fatalf("adopting released sessions took %s: it waited for the lease", d)
	}
}

func TestEndDeletesSession(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	a := openNode(t, testConfig(t, "a", ks))
	if err := a.Commit("e", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	if _, err := a.Peek(context.Background(), "e"); err != nil {
		t.Fatal(err)
	}
	if err := a.End("e"); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	b := openNode(t, testConfig(t, "b", ks))
	if _, err := b.Adopt(context.Background(), "e"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("adopt of an ended session: %v", err)
	}
	// A session created and ended inside one window never touches Cassandra.
	if err := a.Commit("brief", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	if err := a.End("brief"); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	if _, err := b.Peek(context.Background(), "brief"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("peek of a brief session: %v", err)
	}
}

func TestBadInputIsRefusedWhole(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	cfg := testConfig(t, "a", ks)
	cfg.MaxSessionIDBytes, cfg.MaxKeyBytes, cfg.MaxValueBytes = 16, 8, 64
	a := openNode(t, cfg)
	if err := a.Commit("ok", put("k", "kept")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		session string
		change  Change
		field   string
		limit   string
	}{
		{"", put("k", "v"), "session ID", "16"},
		{strings.Repeat("s", 17), put("k", "v"), "session ID", "16"},
		{"ok", put("", "v"), "key", "8"},
		{"ok", put("123456789", "v"), "key", "8"},
		{"ok", Change{Key: "k", Value: make([]byte, 65)}, "value", "64"},
	}
	for _, c := range cases {
		// A good change before the bad one must not be applied either.
		err := a.Commit(c.session, put("k", "partial"), c.change)
		var le *LimitError
		if !errors.As(err, &le) || !errors.Is(err, ErrInvalidInput) || le.Field != c.field || !strings.Contains(err.Error(), c.limit) {
			t.Errorf("commit %q %q: %v; want a LimitError naming %s and %s", c.session, c.change.Key, err, c.field, c.limit)
		}
	}
	flush(t, a)
	p, err := a.Peek(context.Background(), "ok")
	if err != nil || string(p.Map()["k"]) != "kept" {
		t.Fatalf("after refused commits: %+v %v", p, err)
	}
}

func TestBufferFullIsExplicit(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	cfg := testConfig(t, "a", ks)
	cfg.MaxPendingBytes = 1 << 20
	cfg.FlushDelay = time.Hour // nothing drains on its own
	cfg.MaxWindow = 0          // the default bound, 10 x the delay
	a := openNode(t, cfg)
	a.buf.Pause()
	v := make([]byte, 64<<10)
	accepted, refused := 0, 0
	for i := 0; i < 40; i++ {
		err := a.Commit(fmt.Sprintf("s%d", i), Change{Key: "k", Value: v})
		switch {
		case err == nil:
			accepted++
		case errors.Is(err, ErrBufferFull):
			refused++
		default:
			t.Fatal(err)
		}
	}
	if accepted == 0 || refused == 0 || a.Stats().Buffer.Refusals != uint64(refused) {
		t.Fatalf("accepted %d refused %d, stats %+v", accepted, refused, a.Stats().Buffer)
	}
	a.buf.Resume()
	flush(t, a)
	for i := 0; i < accepted; i++ {
		if _, err := a.Peek(context.Background(), fmt.Sprintf("s%d", i)); err != nil {
			t.Fatalf("accepted session s%d not persisted: %v", i, err)
		}
	}
}

// HOLDOVER_NEGATIVE_CACHE_SIZE=0 disables the negative cache, as documented:
// every adoption of an absent session asks Cassandra. Before, the 0 reached
// residency, which reads a size of 0 as its default (100,000 entries), so
// the cache stayed on and a session created elsewhere kept answering
// ErrNotFound for the cache's TTL.
func TestNegativeCacheSizeZeroDisablesTheCache(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	for _, size := range []int{0, 10} {
		cfg := testConfig(t, fmt.Sprintf("negcache-%d", size), ks)
		cfg.NegativeCacheSize = size
		a := openNode(t, cfg)
		for range 2 {
			if _, err := a.Adopt(context.Background(), "nobody"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("size %d: adopt an absent session: %v", size, err)
			}
		}
		hits := a.Stats().Residency.NegativeHits
		if size == 0 && hits != 0 {
			t.Errorf("HOLDOVER_NEGATIVE_CACHE_SIZE=0, yet %d adoption(s) were answered by the negative cache", hits)
		}
		if size > 0 && hits != 1 {
			t.Errorf("size %d: %d negative cache hits, want 1 (the second adoption)", size, hits)
		}
	}
}
