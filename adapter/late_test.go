package adapter

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/buffer"
)

// A write that landed past its window bound is logged, at most once every
// lateLogEvery, and the next line says how many were not logged since.
func TestLateWritesAreLoggedAtMostEveryTenSeconds(t *testing.T) {
	var out bytes.Buffer
	a := &Adapter{log: slog.New(slog.NewTextHandler(&out, nil))}
	e := buffer.FlushEvent{Session: "s1", Lag: 900 * time.Millisecond, Duration: 800 * time.Millisecond, Attempt: 1, Late: true}
	a.lateWrite(e)
	a.lateWrite(e)
	a.lateWrite(e)
	if n := strings.Count(out.String(), "past the window bound"); n != 1 {
		t.Fatalf("three late writes within 10 s logged %d lines, want 1:\n%s", n, out.String())
	}
	a.late.mu.Lock()
	a.late.last = time.Now().Add(-lateLogEvery - time.Second)
	a.late.mu.Unlock()
	a.lateWrite(e)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "not_logged_since_last=2") ||
		!strings.Contains(lines[1], "session=s1") || !strings.Contains(lines[1], "waited_before_write=100ms") {
		t.Fatalf("after 10 s, want a second line counting the 2 not logged:\n%s", out.String())
	}
}
