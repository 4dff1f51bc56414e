package buffer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// sameShard returns the first ID prefix+N that lands in id's shard.
func sameShard(b *Buffer, id, prefix string) string {
	for i := 0; ; i++ {
		if c := fmt.Sprint(prefix, i); b.shardIndex(c) == b.shardIndex(id) {
			return c
		}
	}
}

// flushFamilies records FlushEvent.Family per session.
type flushFamilies struct {
	mu  sync.Mutex
	fam map[string]string
}

func (r *flushFamilies) onFlush(e FlushEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fam == nil {
		r.fam = map[string]string{}
	}
	r.fam[e.Session] = e.Family
}

func (r *flushFamilies) get() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.fam)
}

// Each family flushes after its own Delay, the default family after
// Config.Delay, whatever was committed before in the same shard: a 10ms session
// committed just after a 5s one in its shard does not wait behind it. Flush events
// carry the family's name.
func TestFamiliesFlushOnTheirOwnSchedules(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	var evs flushFamilies
	h := newHarness(t, Config{Delay: 100 * ms, OnFlush: evs.onFlush, Families: []Family{
		{Name: "fast", Prefix: "f:", Delay: 10 * ms},
		{Name: "slow", Prefix: "s:", Delay: 5 * time.Second},
	}})
	slow := "s:1"
	fast := sameShard(h.b, slow, "f:")
	commitAt(slow, "k")(t, h)
	commitAt(fast, "k")(t, h)
	commitAt("d:1", "k")(t, h)
	for _, st := range []tstep{
		wait(9 * ms), calls(""), // the fast family's slack is 10ms/16
		wait(1 * ms), calls(fast),
		wait(88 * ms), calls(fast),
		wait(2 * ms), calls(fast + " d:1"),
		commitAt(fast, "k"), wait(10 * ms), calls(fast + " d:1 " + fast), // +110ms
		wait(4888 * ms), calls(fast + " d:1 " + fast), // +4998ms
		wait(2 * ms), calls(fast + " d:1 " + fast + " " + slow),
	} {
		st(t, h)
	}
	want := map[string]string{fast: "fast", slow: "slow", "d:1": ""}
	if got := evs.get(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("FlushEvent.Family by session: %v, want %v", got, want)
	}
	var names []string
	for _, fs := range h.b.Stats().Families {
		names = append(names, fs.Name)
	}
	if !slices.Equal(names, []string{"", "fast", "slow"}) {
		t.Errorf("Stats.Families names %q, want the default family then Config.Families in order", names)
	}
}

// A session belongs to the family with the longest prefix of its ID, whatever
// the order in which the families are declared; an ID matching none is in the
// default family.
func TestFamilyLongestPrefixWins(t *testing.T) {
	t.Parallel()
	fams := []Family{
		{Name: "reg", Prefix: "reg:", Delay: 10 * time.Millisecond},
		{Name: "vip", Prefix: "reg:vip:", Delay: 20 * time.Millisecond},
		{Name: "r", Prefix: "r", Delay: 30 * time.Millisecond},
	}
	want := map[string]string{"reg:vip:1": "vip", "reg:1": "reg", "reg:vip": "reg", "reg": "r", "rx": "r", "x": "", "vip:1": ""}
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			t.Parallel()
			var cfg Config
			for _, i := range order {
				cfg.Families = append(cfg.Families, fams[i])
			}
			var evs flushFamilies
			cfg.OnFlush = evs.onFlush
			h := newHarness(t, cfg)
			for id := range want {
				h.commit(id, put("k", "v"))
			}
			if err := h.flushAll(); err != nil {
				t.Fatal(err)
			}
			if got := evs.get(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("families %v, want %v", got, want)
			}
		})
	}
}

// A change alone over its family's MaxSessionBytes, to a session holding
// some already, is refused as bad input too (ErrInvalid): no retry can pass.
// It used to be a refusal like any other at the bound, which hosts answer
// "retry later".
func TestAChangeAloneOverTheFamilyBoundIsInvalid(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Families: []Family{{Name: "small", Prefix: "s:", MaxSessionBytes: 1024}}})
	h.commit("s:1", put("a", strings.Repeat("x", 100)))
	err := h.b.Commit("s:1", put("huge", strings.Repeat("x", 2000)))
	var tl *SessionTooLargeError
	if !errors.Is(err, ErrSessionTooLarge) || !errors.Is(err, ErrInvalid) || !errors.As(err, &tl) || !tl.Alone {
		t.Fatalf("a change alone over the bound: %v (ErrInvalid: %v), want ErrSessionTooLarge, ErrInvalid, Alone", err, errors.Is(err, ErrInvalid))
	}
	if !strings.Contains(err.Error(), "no retry can pass") {
		t.Errorf("error %q does not say no retry can pass", err)
	}
}

// A family's MaxSessionBytes is a hard bound on what a session holds unflushed,
// in flight included: a Commit that would cross it is refused with
// ErrSessionTooLarge naming the family, the size and the limit, and applies
// nothing. The size counted is exact (a delete frees its value, so a
// transaction that removes as much as it adds fits). The bound still flushes a
// session early, as Config.MaxSessionBytes does, and the default family has no
// hard bound.
func TestFamilyMaxSessionBytesIsAHardBound(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Families: []Family{{Name: "small", Prefix: "s:", MaxSessionBytes: 1024}}})
	x := func(n int) string { return strings.Repeat("x", n) }
	h.commit("s:1", put("a", x(900))) // 1+900+40 = 941 bytes
	err := h.b.Commit("s:1", put("b", "y"), put("c", x(100)))
	if !errors.Is(err, ErrSessionTooLarge) {
		t.Fatalf("commit over the family's bound: %v, want ErrSessionTooLarge", err)
	}
	// Over the bound with what the session holds: a retry may pass once that
	// is written, so it is no bad input.
	var tl *SessionTooLargeError
	if errors.Is(err, ErrInvalid) || !errors.As(err, &tl) || tl.Alone || tl.Limit != 1024 || tl.Size != 1124 {
		t.Errorf("commit over the bound with what the session holds: %#v (ErrInvalid: %v), want Alone false, Size 1124, Limit 1024",
			tl, errors.Is(err, ErrInvalid))
	}
	for _, want := range []string{`"s:1"`, `family "small"`, "1124", "MaxSessionBytes is 1024"} { // 941+42+141
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if err := h.b.Commit("s:2", put("big", x(2000))); !errors.Is(err, ErrSessionTooLarge) {
		t.Fatalf("a new session over the bound: %v", err)
	} else if !errors.Is(err, ErrInvalid) || !errors.As(err, &tl) || !tl.Alone {
		// The change alone is over the bound: no retry can pass.
		t.Errorf("a change alone over the bound: %v (ErrInvalid: %v), want Alone and ErrInvalid", err, errors.Is(err, ErrInvalid))
	}

	if h.b.Pending("s:2") {
		t.Error("a refused new session entered the buffer")
	}
	// The refusal hurries s:1's flush (the bound flushes a session early):
	// wait for it to land, so that what follows starts from a known state.
	for giveUp := time.Now().Add(5 * time.Second); h.b.Stats().Flushes == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(giveUp) {
			t.Fatal("the refusal at the family's bound did not flush the session early")
		}
	}
	if st := h.b.Stats(); st.PendingItems != 0 || st.FlushedItems != 1 || st.SessionTooLarge != 2 {
		t.Fatalf("after two refusals and the early flush: %+v", st)
	}
	if fs := h.b.Stats().Families; fs[1].SessionTooLarge != 2 || fs[1].PendingItems != 0 || fs[0].SessionTooLarge != 0 {
		t.Fatalf("after two refusals and the early flush: %+v", fs)
	}
	h.commit("s:1", del("a"), put("d", x(800))) // 41+841 = 882: fits
	h.commit("d:1", put("a", x(900)), put("b", "y"), put("c", x(100)))

	// In flight counts: the flight holds 882 bytes, so 241 more do not fit.
	h.block()
	h.advance(DefaultDelay)
	if err := h.b.Commit("s:1", put("e", x(200))); !errors.Is(err, ErrSessionTooLarge) {
		t.Fatalf("commit beside a flight that leaves no room: %v", err)
	}
	h.unblock()
	h.commit("s:1", put("e", x(200)))

	// At the bound, a session is flushed at once.
	n := h.ncalls()
	h.commit("s:3", put("k", x(983))) // 1+983+40 = 1024
	h.settle()
	if n == h.ncalls() || h.call(h.ncalls()-1).Session != "s:3" {
		t.Errorf("a session at its family's bound was not flushed early")
	}
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	if got := h.st.read("s:1"); len(got) != 2 || got["d"] != x(800) || got["e"] != x(200) {
		t.Errorf("s:1 stored %d keys, want d and e only: refused commits must apply nothing", len(got))
	}
	if got := h.st.read("d:1"); len(got) != 3 {
		t.Errorf("default-family session stored %d keys, want 3", len(got))
	}
	if got := h.st.read("s:2"); len(got) != 0 {
		t.Errorf("refused session stored %v", got)
	}
}

// Each family has its own window bound: a 5s family whose changes wait 5s by
// design, or whose flushes are slow, does not make a 10ms family refuse, and a
// 10ms family that cannot flush refuses alone. OnOverload and OnFamilyOverload
// are called for each family's change.
func TestFamilyOverloadIsolated(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	var mu sync.Mutex
	var changes []string
	var unnamed int
	h := newHarness(t, Config{
		Delay: 100 * ms, RetryMin: 20 * ms, RetryMax: 20 * ms,
		Families: []Family{
			{Name: "fast", Prefix: "f:", Delay: 10 * ms, MaxWindow: 100 * ms},
			{Name: "slow", Prefix: "s:", Delay: 5 * time.Second, MaxWindow: 8 * time.Second},
		},
		OnOverload: func(bool, time.Duration, time.Duration) { mu.Lock(); unnamed++; mu.Unlock() },
		OnFamilyOverload: func(family string, on bool, _, _ time.Duration) {
			mu.Lock()
			changes = append(changes, fmt.Sprint(family, " ", on))
			mu.Unlock()
		},
	})
	// The slow family's change ages for nearly 5s, and one of its flushes took
	// 300ms: the fast family keeps accepting.
	h.commit("s:1", put("k", "1"))
	h.b.flew(2, h.clk.Now().Add(-300*ms), 0)
	for i := range 245 { // 4.9s
		h.commit(fmt.Sprint("f:", i%3), put("k", fmt.Sprint(i)))
		h.advance(20 * ms)
	}
	if st := h.b.Stats(); st.Families[2].OldestPendingAge < 4800*ms || st.OldestPendingAge != st.Families[2].OldestPendingAge || st.OverloadTrips != 0 {
		t.Fatalf("after 4.9s: %+v", st)
	}

	// The fast family cannot flush: it alone refuses.
	h.setFail(func(s *Snapshot) error {
		if strings.HasPrefix(s.Session, "f:") {
			return errors.New("unavailable")
		}
		return nil
	})
	h.commit("f:9", put("k", "9"))
	h.step(10*ms, 15)
	err := h.b.Commit("f:10", put("k", "10"))
	if !errors.Is(err, ErrOverloaded) || !strings.Contains(err.Error(), `"fast"`) {
		t.Fatalf("commit to the overloaded fast family: %v", err)
	}
	if err := h.b.End("f:9"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("End in the overloaded fast family: %v", err)
	}
	// Overloaded, which a host asks before doing work for a new session,
	// says the same of each family, and counts nothing.
	if err := h.b.Overloaded("f:new"); !errors.Is(err, ErrOverloaded) || !strings.Contains(err.Error(), `"fast"`) {
		t.Fatalf("Overloaded of a new session of the overloaded fast family: %v", err)
	}
	if err := h.b.Overloaded("s:new"); err != nil {
		t.Fatalf("Overloaded of a new session of the slow family: %v", err)
	}
	if err := h.b.Overloaded("new"); err != nil {
		t.Fatalf("Overloaded of a new session of no family: %v", err)
	}
	if err := h.b.Commit("s:2", put("k", "2")); err != nil {
		t.Fatalf("commit to the slow family while the fast one is overloaded: %v", err)
	}
	if err := h.b.End("d:1"); err != nil {
		t.Fatalf("End in the default family while the fast one is overloaded: %v", err)
	}
	st := h.b.Stats()
	fs := st.Families
	if !st.Overloaded || st.Overloads != 2 || st.OverloadTrips != 1 || !fs[1].Overloaded || fs[1].Overloads != 2 ||
		fs[1].OverloadTrips != 1 || fs[2].Overloaded || fs[2].Overloads != 0 || fs[0].Overloaded {
		t.Fatalf("while the fast family is overloaded: %+v", st)
	}
	h.setFail(nil)
	h.step(10*ms, 10)
	if err := h.b.Commit("f:10", put("k", "10")); err != nil {
		t.Fatalf("commit once the fast family caught up: %v", err)
	}
	mu.Lock()
	got, n := slices.Clone(changes), unnamed
	mu.Unlock()
	if !slices.Equal(got, []string{"fast true", "fast false"}) || n != 2 {
		t.Fatalf("overload changes %q (%d OnOverload calls), want the fast family's on and off", got, n)
	}
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	if got := h.st.read("f:10")["k"]; got != "10" {
		t.Errorf("f:10 stored %q", got)
	}
}

// Validate reports every bad family at once, each error naming the family by
// index and name.
func TestFamiliesValidated(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	cfg := Config{Delay: 100 * ms, MaxWindow: 500 * ms, Families: []Family{
		{Name: "ok", Prefix: "ok:", Delay: 10 * ms, MaxSessionBytes: 4096, MaxWindow: 50 * ms},
		{Name: "reg", Prefix: "reg:", Delay: 2 * time.Hour, MaxWindow: 25 * time.Hour},
		{Prefix: "x:"},
		{Name: "ok", Prefix: "ok2:"},
		{Name: "dup", Prefix: "reg:"},
		{Name: "noprefix"},
		{Name: "tiny", Prefix: "t:", MaxSessionBytes: 10},
		{Name: "slow", Prefix: "s:", Delay: 5 * time.Second},
		{Name: "win", Prefix: "w:", Delay: time.Second, MaxWindow: time.Second},
	}}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	wants := []string{
		`buffer: Config.Families[1] ("reg"): Delay is 2h0m0s; must be between 1ms and 1h0m0s`,
		`buffer: Config.Families[1] ("reg"): MaxWindow is 25h0m0s; must be above the family's Delay (2h0m0s) and at most 24h0m0s`,
		`buffer: Config.Families[2] (""): Name is empty`,
		`buffer: Config.Families[3] ("ok"): Name is also Config.Families[0]'s`,
		`buffer: Config.Families[4] ("dup"): Prefix "reg:" is also Config.Families[1]'s`,
		`buffer: Config.Families[5] ("noprefix"): Prefix is empty`,
		`buffer: Config.Families[6] ("tiny"): MaxSessionBytes is 10; must be between 1024 and MaxPendingBytes (268435456)`,
		`buffer: Config.Families[7] ("slow"): MaxWindow is 0, so Config.MaxWindow (500ms) applies; it must be above the family's Delay (5s)`,
		`buffer: Config.Families[8] ("win"): MaxWindow is 1s; must be above the family's Delay (1s)`,
	}
	for _, want := range wants {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(wants) {
		t.Errorf("%d errors, want %d:\n%v", n, len(wants), err)
	}
	if _, err := New(cfg, func(context.Context, *Snapshot) error { return nil }); err == nil {
		t.Error("New accepted bad families")
	}
	cfg.Families = slices.Delete(cfg.Families, 1, len(cfg.Families))
	if err := cfg.Validate(); err != nil {
		t.Errorf("good family: %v", err)
	}
	cfg.Families = nil
	for i := range MaxFamilies + 1 {
		cfg.Families = append(cfg.Families, Family{Name: fmt.Sprint(i), Prefix: fmt.Sprint(i, ":")})
	}
	if err := cfg.Validate(); err == nil || err.Error() != "buffer: Config.Families has 65 entries; the limit is MaxFamilies (64)" {
		t.Errorf("65 families: %v", err)
	}
}

// A session retried after a transient error ranks in the ready queue as due at
// its first unflushed change plus its family's Delay: with one worker, a 10ms
// session whose retry came due while the buffer was paused goes before a
// default-family session due 1s after its first change, though both were ready
// at once and the 10ms session's first change is the later one.
func TestFamilyRetryRanksByFamilyDelay(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	h := newHarness(t, Config{Delay: time.Second, Concurrency: 1, RetryMin: 100 * ms, RetryMax: 100 * ms,
		Families: []Family{{Name: "fast", Prefix: "f:", Delay: 10 * ms}}})
	h.commit("d:1", put("k", "1"))
	h.advance(5 * ms)
	fail := true
	h.setFail(func(*Snapshot) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if fail {
			fail = false
			return errors.New("unavailable")
		}
		return nil
	})
	h.commit("f:1", put("k", "1"))
	h.advance(10 * ms) // f:1 fails and waits for its retry
	h.b.Pause()
	h.advance(2 * time.Second) // the retry and d:1 both come due
	h.b.Resume()
	h.settle()
	var got []string
	for i := range h.ncalls() {
		got = append(got, h.call(i).Session)
	}
	if !slices.Equal(got, []string{"f:1", "f:1", "d:1"}) {
		t.Fatalf("calls %v, want f:1, its retry (due at +15ms), then d:1 (due at +1s)", got)
	}
}

// Stats break the pending figures down by family; the overall figures cover all
// of them (OldestPendingAge is the oldest of any family).
func TestFamilyStats(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	h := newHarness(t, Config{Delay: time.Hour, Families: []Family{
		{Name: "a", Prefix: "a:", Delay: 30 * time.Minute},
		{Name: "b", Prefix: "b:", Delay: 45 * time.Minute},
	}})
	h.commit("a:1", put("k", "1"), put("j", "1"))
	h.advance(10 * ms)
	h.commit("b:1", put("k", "1"))
	h.commit("b:2", put("k", "1"))
	h.advance(10 * ms)
	h.commit("d:1", put("k", "1"))
	st := h.b.Stats()
	fs := st.Families
	want := []FamilyStats{
		{Name: "", PendingSessions: 1, PendingItems: 1},
		{Name: "a", PendingSessions: 1, PendingItems: 2, OldestPendingAge: 20 * ms},
		{Name: "b", PendingSessions: 2, PendingItems: 2, OldestPendingAge: 10 * ms},
	}
	if fmt.Sprint(fs) != fmt.Sprint(want) {
		t.Errorf("families %+v, want %+v", fs, want)
	}
	if st.PendingSessions != 4 || st.PendingItems != 5 || st.OldestPendingAge != 20*ms {
		t.Errorf("overall %+v", st)
	}
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	for _, fs := range h.b.Stats().Families {
		if fs.PendingSessions != 0 || fs.PendingItems != 0 || fs.OldestPendingAge != 0 {
			t.Errorf("after Flush: %+v", fs)
		}
	}
}

// A commit refused at its family's MaxSessionBytes makes the session
// urgent, as reaching the bound does: what it holds is written at once and
// a retry succeeds soon after ("it is flushed early at the bound"). Before,
// only a session landing exactly on the bound was hurried; one refused just
// under it waited its family's whole delay, refusing every retry meanwhile.
func TestRefusalAtTheFamilysBoundFlushesEarly(t *testing.T) {
	h := newHarness(t, Config{Families: []Family{{Name: "small", Prefix: "s:", Delay: time.Second, MaxSessionBytes: 1024}}})
	h.commit("s:1", put("a", strings.Repeat("x", 900))) // 941 bytes
	if err := h.b.Commit("s:1", put("b", strings.Repeat("y", 100))); !errors.Is(err, ErrSessionTooLarge) {
		t.Fatalf("commit over the bound: %v, want ErrSessionTooLarge", err)
	}
	h.advance(10 * time.Millisecond)
	if h.ncalls() == 0 {
		t.Errorf("session refused at its family's bound was not flushed early: no flush 10ms after the refusal (Delay 1s)")
	}
	h.advance(10 * time.Millisecond)
	if err := h.b.Commit("s:1", put("b", strings.Repeat("y", 100))); err != nil {
		t.Errorf("retry 20ms after the refusal: %v", err)
	}
}
