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

// Bad input is named as such before any refusal for load: a new session
// whose change is invalid gets the change's error, not the "try again" of a
// busy creation path that would send its host retrying a request that can
// never succeed; and the session check (which counts an admission) is not
// made for a commit the buffer's own limits refuse.
func TestInvalidChangesAreNamedBeforeABusySession(t *testing.T) {
	t.Parallel()
	busy, badKey := errors.New("busy: try again"), errors.New("key refused")
	var sessions int
	h := newHarness(t, Config{
		Delay: time.Hour,
		CheckSession: func(string) error {
			sessions++
			return busy
		},
		CheckChange: func(key string, _ []byte, _ bool) error {
			if key == "bad" {
				return badKey
			}
			return nil
		},
	})
	if err := h.b.Commit("new", put("k", "1"), put("bad", "x")); !errors.Is(err, badKey) || errors.Is(err, busy) {
		t.Fatalf("new session with a refused key: %v, want the key's error", err)
	}
	if err := h.b.Commit("new", put("", "1")); !errors.Is(err, ErrInvalid) || errors.Is(err, busy) {
		t.Fatalf("new session with an empty key: %v, want ErrInvalid", err)
	}
	if err := h.b.Commit("new", put(strings.Repeat("k", MaxKeyLen+1), "1")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("new session with a key over MaxKeyLen: %v, want ErrInvalid", err)
	}
	if sessions != 0 {
		t.Fatalf("%d session checks for commits refused as invalid, want 0", sessions)
	}
	if err := h.b.Commit("new", put("k", "1")); !errors.Is(err, busy) {
		t.Fatalf("valid change of a busy new session: %v", err)
	}
}
