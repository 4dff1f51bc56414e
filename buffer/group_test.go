package buffer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestGroupFlush: with one worker and many sessions ready, small snapshots travel in
// GroupFlush calls of at most GroupMax sessions and GroupBytes bytes; a snapshot over
// GroupBytes and a split one go through the FlushFunc; each grouped snapshot keeps its
// own outcome (one retried after a transient error, one dropped after a permanent one,
// the rest released).
func TestGroupFlush(t *testing.T) {
	h := newHarnessOpt(t, Config{Concurrency: 1, GroupMax: 4, GroupBytes: 512, MaxBatchBytes: 1 << 10, MaxSessionItems: 1000}, true)
	for i := range 10 {
		h.commit(fmt.Sprint("s", i), put("k", fmt.Sprint("v", i)))
	}
	h.commit("big", put("k", strings.Repeat("x", 600)))                                       // over GroupBytes
	h.commit("split", put("a", strings.Repeat("x", 700)), put("b", strings.Repeat("y", 700))) // two parts
	fails := map[string]error{"s3": errors.New("timeout"), "s5": Permanent(errors.New("invalid"))}
	h.setFail(func(s *Snapshot) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		err := fails[s.Session]
		delete(fails, s.Session) // fail once
		return err
	})
	h.advance(DefaultDelay)
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}

	h.mu.Lock()
	groups := slices.Clone(h.groups)
	h.mu.Unlock()
	grouped := map[string]bool{}
	for _, g := range groups {
		if len(g) < 2 || len(g) > 4 {
			t.Errorf("group %v: want 2 to 4 sessions", g)
		}
		for _, s := range g {
			if s == "big" || s == "split" {
				t.Errorf("%s was grouped (group %v)", s, g)
			}
			grouped[s] = true
		}
	}
	if len(grouped) < 8 {
		t.Errorf("only %d of the 10 small sessions were grouped: %v", len(grouped), groups)
	}
	for i := range 10 {
		s := fmt.Sprint("s", i)
		got := h.st.read(s)["k"]
		if s == "s5" {
			if got != "" {
				t.Errorf("s5 stored %q after a permanent error", got)
			}
			continue
		}
		if want := fmt.Sprint("v", i); got != want {
			t.Errorf("%s stored %q, want %q", s, got, want)
		}
	}
	if got := h.st.read("big")["k"]; len(got) != 600 {
		t.Errorf("big stored %d bytes", len(got))
	}
	if got := h.st.read("split"); len(got) != 2 {
		t.Errorf("split stored %v", got)
	}
	h.mu.Lock()
	onDrop := slices.Clone(h.onDrop)
	h.mu.Unlock()
	if !slices.Equal(onDrop, []string{"s5:1"}) {
		t.Errorf("OnDrop calls %v, want [s5:1]", onDrop)
	}
	st := h.b.Stats()
	if st.Groups != uint64(len(groups)) || st.Grouped < uint64(len(grouped)) || st.Retries != 1 || st.Drops != 1 {
		t.Errorf("stats: groups %d grouped %d retries %d drops %d; harness saw %d groups", st.Groups, st.Grouped, st.Retries, st.Drops, len(groups))
	}
	// Nine small sessions (s5 dropped; s3 counted once, on its retry), big, and the
	// two parts of split.
	if st.Flushes != 12 {
		t.Errorf("Flushes %d, want 12", st.Flushes)
	}
}

// TestGroupBytes: a group's snapshots total at most GroupBytes.
func TestGroupBytes(t *testing.T) {
	h := newHarnessOpt(t, Config{Concurrency: 1, GroupMax: 8, GroupBytes: 512}, true)
	v := strings.Repeat("x", 100) // 100 + 1 + entryOverhead bytes per snapshot
	for i := range 12 {
		h.commit(fmt.Sprint("s", i), put("k", v))
	}
	h.advance(DefaultDelay)
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	per := entryBytes(1, len(v))
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.groups) == 0 {
		t.Fatal("no group formed")
	}
	for _, g := range h.groups {
		if int64(len(g))*per > 512 {
			t.Errorf("group of %d snapshots of %d bytes exceeds GroupBytes 512", len(g), per)
		}
	}
}

// TestGroupLoneSession: a session ready on its own goes through the FlushFunc, not
// a group of one.
func TestGroupLoneSession(t *testing.T) {
	h := newHarnessOpt(t, Config{Concurrency: 8, GroupMax: 8, Delay: 10 * time.Millisecond}, true)
	h.commit("s", put("k", "v"))
	h.advance(10 * time.Millisecond)
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	n := len(h.groups)
	h.mu.Unlock()
	if n != 0 || h.ncalls() != 1 {
		t.Errorf("one ready session: %d groups and %d calls, want 0 groups and 1 call", n, h.ncalls())
	}
}
