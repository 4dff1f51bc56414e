package adapter

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// flushTimes records when each session's first successful write ended,
// counted from start.
type flushTimes struct {
	mu    sync.Mutex
	start time.Time
	at    map[string]time.Duration
	fam   map[string]string
}

func newFlushTimes() *flushTimes {
	return &flushTimes{start: time.Now(), at: map[string]time.Duration{}, fam: map[string]string{}}
}

func (f *flushTimes) observe(e FlushEvent) {
	if e.Err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.at[e.Session]; !ok {
		f.at[e.Session] = time.Since(f.start)
		f.fam[e.Session] = e.Family
	}
}

func (f *flushTimes) get(session string) (time.Duration, string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.at[session]
	return d, f.fam[session], ok
}

// Two families with different delays flush on their own schedules against
// Cassandra, and a session of no family on the node's: committed together,
// the fast family's session is written within its 20 ms (plus a flight),
// the node's after its 300 ms, the slow family's only after its 3 s.
func TestFamiliesFlushOnTheirOwnSchedules(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "fam-a", cassandratest.Keyspace(t))
	cfg.FlushDelay = 300 * time.Millisecond
	cfg.Families = Families{{Name: "slow", FlushDelay: 3 * time.Second}, {Name: "fast", FlushDelay: 20 * time.Millisecond}}
	ft := newFlushTimes()
	a := openNode(t, cfg, WithHooks(Hooks{OnFlushed: ft.observe}))
	ctx := context.Background()
	ft.start = time.Now()
	for _, s := range []string{"slow:1", "fast:1", "plain"} {
		if err := a.Commit(s, put("k", s)); err != nil {
			t.Fatal(err)
		}
	}
	// At 1.5 s the slow family's session is still waiting, unwritten.
	time.Sleep(1500 * time.Millisecond)
	if d, _, ok := ft.get("slow:1"); ok {
		t.Fatalf("the 3 s family's session was written after %v", d)
	}
	if p, err := a.Peek(ctx, "slow:1"); err == nil && len(p.Items) > 0 {
		t.Fatalf("the 3 s family's session is in Cassandra after 1.5 s: %+v", p)
	}
	fast, fam, ok := ft.get("fast:1")
	if !ok || fam != "fast" {
		t.Fatalf("the 20 ms family's session: written=%v family=%q", ok, fam)
	}
	plain, fam, ok := ft.get("plain")
	if !ok || fam != "" {
		t.Fatalf("the session of no family: written=%v family=%q", ok, fam)
	}
	if fast >= plain || plain < 300*time.Millisecond {
		t.Fatalf("fast written at %v, plain at %v: want fast first and plain after its 300 ms", fast, plain)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if d, fam, ok := ft.get("slow:1"); ok {
			if d < 3*time.Second || fam != "slow" {
				t.Fatalf("the 3 s family's session written after %v (family %q)", d, fam)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the 3 s family's session was never written")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, s := range []string{"slow:1", "fast:1", "plain"} {
		p, err := a.Peek(ctx, s)
		if err != nil || string(p.Map()["k"]) != s {
			t.Fatalf("Peek(%s) = %+v, %v", s, p, err)
		}
	}
	st := a.Stats().Buffer
	if len(st.Families) != 3 || st.Families[1].Name != "slow" || st.Families[2].Name != "fast" {
		t.Fatalf("per-family stats: %+v", st.Families)
	}
}

// A family's TTL is its state's and ownership's: a session of a 2 s family
// that no node keeps is gone from Cassandra after it, while a session of no
// family, written beside it, stays.
func TestFamilyTTLExpires(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	cfg := testConfig(t, "ttl-a", ks)
	cfg.Families = Families{{Name: "brief", StateTTL: 2 * time.Second}}
	a := openNode(t, cfg)
	for _, s := range []string{"brief:1", "plain:1"} {
		if err := a.Commit(s, put("k", "v")); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, a)
	a.crash() // nothing renews them from now on
	b := openNode(t, testConfig(t, "ttl-b", ks))
	ctx := context.Background()
	time.Sleep(3500 * time.Millisecond)
	if p, err := b.Peek(ctx, "brief:1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the 2 s family's session outlived its TTL: %+v, %v", p, err)
	}
	if p, err := b.Peek(ctx, "plain:1"); err != nil || string(p.Map()["k"]) != "v" {
		t.Fatalf("the session of no family: %+v, %v", p, err)
	}
}

// The family's largest session is a bound: a commit that would take a
// session past it is refused whole, naming the family and the limit.
func TestFamilyLargestSessionRefusesWhole(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "max-a", cassandratest.Keyspace(t))
	cfg.Families = Families{{Name: "tiny", MaxSessionBytes: KiB}}
	a := openNode(t, cfg)
	big := make([]byte, 2000)
	err := a.Commit("tiny:1", put("small", "ok"), Change{Key: "big", Value: big})
	if !errors.Is(err, ErrSessionTooLarge) || !strings.Contains(err.Error(), `"tiny"`) || !strings.Contains(err.Error(), "1024") {
		t.Fatalf("err = %v, want ErrSessionTooLarge naming the family and its limit", err)
	}
	if a.buf.Pending("tiny:1") {
		t.Fatal("the refused commit left something pending")
	}
	// The same commit to a session of no family is accepted, and a small
	// one to the family's session too.
	if err := a.Commit("other:1", Change{Key: "big", Value: big}); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit("tiny:1", put("small", "ok")); err != nil {
		t.Fatal(err)
	}
	if fs := a.Stats().Buffer.Families; len(fs) != 2 || fs[1].Name != "tiny" || fs[1].SessionTooLarge != 1 {
		t.Fatalf("per-family stats: %+v", fs)
	}
}

// sharedLog collects OnSharedChange calls.
type sharedLog struct {
	mu      sync.Mutex
	changes []SharedChange
}

func (l *sharedLog) hook(family string, cs []SharedChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes = append(l.changes, cs...)
}

func (l *sharedLog) has(session, key, value string, deleted bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.changes {
		if c.Session == session && c.Key == key && c.Deleted == deleted && string(c.Value) == value {
			return true
		}
	}
	return false
}

// all returns a copy of the changes collected.
func (l *sharedLog) all() []SharedChange {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]SharedChange(nil), l.changes...)
}

// waitShared waits until a's view of session's key is want ("" and gone
// when absent), for at most within.
func waitShared(t *testing.T, a *Adapter, session, key, want string, gone bool, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		m, err := a.Shared(session)
		if err != nil {
			t.Fatal(err)
		}
		v, ok := m[key]
		if ok != gone && string(v) == want {
			return time.Since(began)
		}
		if time.Since(began) > within {
			t.Fatalf("node %s: %s/%s = %q (present %v) after %v, want %q (present %v)", a.NodeID(), session, key, v, ok, within, want, !gone)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A shared family written by two nodes converges on both within one
// refresh interval after the write lands: the last writer wins, deletes
// and Ends included, and the hook tells each node what the other changed.
func TestSharedFamilyConvergesOnTwoNodes(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	const refresh = 400 * time.Millisecond
	fams := Families{{Name: "settings", Shared: true, Refresh: refresh, FlushDelay: 20 * time.Millisecond}}
	var la, lb sharedLog
	ca, cb := testConfig(t, "sh-a", ks), testConfig(t, "sh-b", ks)
	ca.Families, cb.Families = fams, fams
	a := openNode(t, ca, WithHooks(Hooks{OnSharedChange: la.hook}))
	b := openNode(t, cb, WithHooks(Hooks{OnSharedChange: lb.hook}))
	// Within one interval of the write landing (its 20 ms delay and a
	// flight), with room for a loaded machine.
	within := refresh + time.Second

	if err := a.CommitShared("settings:codecs", put("audio", "opus")); err != nil {
		t.Fatal(err)
	}
	waitShared(t, a, "settings:codecs", "audio", "opus", false, 0) // a's own write, at once
	waitShared(t, b, "settings:codecs", "audio", "opus", false, within)
	if !lb.has("settings:codecs", "audio", "opus", false) {
		t.Fatal("b's hook was not told of a's write")
	}
	if la.has("settings:codecs", "audio", "opus", false) {
		t.Fatal("a's hook was told of its own write")
	}

	// Both write the key; b writes last, so b's value wins on both. A write
	// is stamped when its flush takes it, not at its commit: a's is written
	// before b commits (5 ms apart, a's flush on a loaded machine could start
	// after b's and win).
	if err := a.CommitShared("settings:codecs", put("video", "h264")); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.CommitShared("settings:codecs", put("video", "av1")); err != nil {
		t.Fatal(err)
	}
	waitShared(t, a, "settings:codecs", "video", "av1", false, within+refresh)
	waitShared(t, b, "settings:codecs", "video", "av1", false, within)

	// A delete by b reaches a.
	if err := b.CommitShared("settings:codecs", Change{Key: "audio", Delete: true}); err != nil {
		t.Fatal(err)
	}
	waitShared(t, a, "settings:codecs", "audio", "", true, within)
	if !la.has("settings:codecs", "audio", "", true) {
		t.Fatal("a's hook was not told of b's delete")
	}

	// An End by a removes the session on b; a write after it by b stands.
	if err := a.EndShared("settings:codecs"); err != nil {
		t.Fatal(err)
	}
	waitShared(t, b, "settings:codecs", "video", "", true, within)
	if err := b.CommitShared("settings:codecs", put("video", "vp9")); err != nil {
		t.Fatal(err)
	}
	waitShared(t, a, "settings:codecs", "video", "vp9", false, within)

	// A node that opens later loads the family at Open.
	cc := testConfig(t, "sh-c", ks)
	cc.Families = fams
	c := openNode(t, cc)
	waitShared(t, c, "settings:codecs", "video", "vp9", false, 0)
	if ids, err := c.SharedSessions("settings"); err != nil || len(ids) != 1 || ids[0] != "settings:codecs" {
		t.Fatalf("SharedSessions = %v, %v", ids, err)
	}
}

// Flush writes the shared families' changes committed before it too: a
// node that opens afterwards loads them. Before, Flush waited for the
// owned sessions' buffer only and returned with the shared change still
// pending for its family's delay.
func TestFlushWritesSharedChanges(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	fams := Families{{Name: "settings", Shared: true, FlushDelay: time.Hour, MaxWindow: 2 * time.Hour}}
	ca, cb := testConfig(t, "flush-sh-a", ks), testConfig(t, "flush-sh-b", ks)
	ca.Families, cb.Families = fams, fams
	a := openNode(t, ca)
	if err := a.CommitShared("settings:codecs", put("audio", "opus")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	b := openNode(t, cb) // loads the family from Cassandra at Open
	waitShared(t, b, "settings:codecs", "audio", "opus", false, 0)
}

// Shared and owned sessions do not mix: each path refuses the other's
// sessions, naming the family.
func TestSharedAndOwnedPathsRefuseEachOther(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "mix-a", cassandratest.Keyspace(t))
	cfg.Families = Families{{Name: "settings", Shared: true}, {Name: "reg"}}
	a := openNode(t, cfg)
	ctx := context.Background()
	for name, err := range map[string]error{
		"Commit":       a.Commit("settings:x", put("k", "v")),
		"End":          a.End("settings:x"),
		"CommitShared": a.CommitShared("reg:x", put("k", "v")),
		"EndShared":    a.EndShared("plain"),
	} {
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput", name, err)
		}
	}
	if _, err := a.Adopt(ctx, "settings:x"); !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), `shared family "settings"`) {
		t.Errorf("Adopt of a shared session: %v", err)
	}
	if _, err := a.Peek(ctx, "settings:x"); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("Peek of a shared session: %v", err)
	}
	if _, err := a.SharedSessions("reg"); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("SharedSessions of an owned family: %v", err)
	}
}

// A shared family's TTL expires its keys, and the other nodes are told.
func TestSharedFamilyTTLExpires(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	fams := Families{{Name: "flash", Shared: true, StateTTL: 2 * time.Second, Refresh: 300 * time.Millisecond, FlushDelay: 10 * time.Millisecond}}
	var lb sharedLog
	ca, cb := testConfig(t, "ex-a", ks), testConfig(t, "ex-b", ks)
	ca.Families, cb.Families = fams, fams
	a := openNode(t, ca)
	b := openNode(t, cb, WithHooks(Hooks{OnSharedChange: lb.hook}))
	if err := a.CommitShared("flash:1", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	waitShared(t, b, "flash:1", "k", "v", false, 2*time.Second)
	waitShared(t, b, "flash:1", "k", "", true, 5*time.Second)
	if !lb.has("flash:1", "k", "", true) {
		t.Fatal("b was not told the key expired")
	}
}
