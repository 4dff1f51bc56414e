package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/testbench/soak"
)

func TestSoakUsage(t *testing.T) {
	for _, args := range [][]string{
		{"soak"}, // -node-bin missing
		{"soak", "-node-bin", "/bin/true", "-nodes", "1"}, // too few nodes
		{"soak", "-node-bin", "/bin/true", "extra"},
		{"soak", "-bogus"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s%s)", args, code, out.String(), errb.String())
		}
	}
	// Flags parse, but the soak cannot run: status 1, never a skip.
	var out, errb bytes.Buffer
	args := []string{"soak", "-node-bin", filepath.Join(t.TempDir(), "missing"), "-out", t.TempDir()}
	if code := run(context.Background(), args, &out, &errb); code != 1 || !strings.Contains(out.String(), "could not run") {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
}

func TestCassandraStatusLine(t *testing.T) {
	out := "cassandra: ring1/node1 running (pid 3604) at 127.0.0.1:9042\ncassandra: ring3dc2/node3 running (pid 13534) at 127.0.0.13:9042 in dc1\n"
	m := cassandraStatusRE.FindAllStringSubmatch(out, -1)
	if len(m) != 2 || m[0][2] != "3604" || m[0][3] != "127.0.0.1" || m[0][4] != "9042" || m[1][3] != "127.0.0.13" {
		t.Fatalf("%q", m)
	}
}

// TestCheckOnly: -check checks a saved history; its status says whether a
// violation was found.
func TestCheckOnly(t *testing.T) {
	write := func(lost bool) string {
		path := filepath.Join(t.TempDir(), "h.jsonl")
		h, err := soak.CreateHistory(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
		ev := soak.Event{Type: soak.EvCreate, Attrs: map[string]string{"a": "b"}}
		h.Add(soak.Record{Type: soak.RecMeta, Meta: &soak.Meta{Seed: 9, FlushDelayMS: 100, WindowAllowanceMS: 250}})
		h.Add(soak.Record{Type: soak.RecOp, Session: "s", Kind: soak.OpCreate, Node: "n1", Start: at(0), End: at(5), Event: &ev, Outcome: soak.OutAck, Version: 1})
		o := &soak.Observed{Found: true, Version: 1, State: &soak.State{Attrs: map[string]string{"a": "b"}}}
		if lost {
			o = &soak.Observed{}
		}
		h.Add(soak.Record{Type: soak.RecFinal, Session: "s", Start: at(9000), End: at(9000), Outcome: soak.OutObserved, Obs: o})
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, lost := range []bool{false, true} {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"soak", "-check", write(lost)}, &out, &errb)
		if want := map[bool]int{false: 0, true: 1}[lost]; code != want || !strings.Contains(out.String(), `"I1": `) {
			t.Fatalf("lost=%v: exit %d, want %d: %s%s", lost, code, want, out.String(), errb.String())
		}
	}
}

// A node's self-fence lines reach the soak as they are written (it records
// them as failures of the node), split across writes or not.
func TestTailLogReportsSelfFences(t *testing.T) {
	l := &tailLog{max: 10}
	var n int
	l.setOnFence(func() { n++ })
	for _, chunk := range []string{
		"time=1 level=INFO msg=started\n",
		`time=2 level=ERROR msg="holdover: lease lapsed, node self`, "-fenced\" node=a sessions=3\n",
		"time=3 level=INFO msg=\"holdover: lease renewed, node unfenced\"\n",
		`time=4 level=ERROR msg="holdover: lease lapsed, node self-fenced" node=a` + "\n",
	} {
		if _, err := l.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if n != 2 || l.fences() != 2 {
		t.Fatalf("self-fences reported %d, counted %d; want 2 and 2", n, l.fences())
	}
}
