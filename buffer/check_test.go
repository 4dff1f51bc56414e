package buffer

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// CheckSession and CheckChange see every session the buffer holds nothing of
// and every change outside the fast path; a refusal applies nothing; the fast
// path (a same-sized value for a dirty key) calls neither.
func TestCheckHooks(t *testing.T) {
	t.Parallel()
	var sessions, changes int
	bad := errors.New("refused")
	h := newHarness(t, Config{
		Delay: time.Hour,
		CheckSession: func(s string) error {
			sessions++
			if s == "bad" {
				return bad
			}
			return nil
		},
		CheckChange: func(key string, _ []byte, _ bool) error {
			changes++
			if key == "bad" {
				return bad
			}
			return nil
		},
	})
	h.commit("s", put("k", "1"))
	if sessions != 1 || changes != 1 {
		t.Fatalf("first commit: %d session checks, %d change checks", sessions, changes)
	}
	h.commit("s", put("k", "2")) // fast path: same size, dirty key
	if sessions != 1 || changes != 1 {
		t.Fatalf("fast path: %d session checks, %d change checks", sessions, changes)
	}
	h.commit("s", put("k", "longer"), put("j", "x"))
	if sessions != 1 || changes != 3 {
		t.Fatalf("slow path: %d session checks, %d change checks", sessions, changes)
	}
	if err := h.b.Commit("bad", put("k", "1")); !errors.Is(err, bad) {
		t.Fatalf("bad session: %v", err)
	}
	if err := h.b.End("bad"); !errors.Is(err, bad) {
		t.Fatalf("End of a bad session: %v", err)
	}
	err := h.b.Commit("s", put("k", "3"), put("bad", "x"))
	if !errors.Is(err, bad) || !strings.HasPrefix(err.Error(), "change 1: ") {
		t.Fatalf("bad change: %v", err)
	}
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	if got := h.st.read("s"); got["k"] != "longer" || got["j"] != "x" || len(got) != 2 {
		t.Fatalf("after a refused commit: %v", got)
	}
	if got := h.st.read("bad"); len(got) != 0 {
		t.Fatalf("a refused session was written: %v", got)
	}
}

func TestPendingSessions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Delay: time.Hour})
	h.commit("a", put("k", "1"))
	if err := h.b.End("b"); err != nil {
		t.Fatal(err)
	}
	got := h.b.PendingSessions()
	if len(got) != 2 || !(got[0] == "a" && got[1] == "b" || got[0] == "b" && got[1] == "a") {
		t.Fatalf("pending sessions %v, want a and b", got)
	}
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	if got := h.b.PendingSessions(); len(got) != 0 {
		t.Fatalf("pending after flushing everything: %v", got)
	}
}
