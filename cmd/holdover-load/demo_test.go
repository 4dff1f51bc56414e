package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/testbench/loadgen"
	"github.com/holdover/holdover/residency"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// demoTestOptions builds the reference node and returns the options of a
// small demo on the test Cassandra (which must answer: the test fails, never
// skips, without it).
func demoTestOptions(t *testing.T) demoOptions {
	hosts, _ := cassandratest.Hosts(t)
	t.Setenv("HOLDOVER_CASSANDRA_HOSTS", strings.Join(hosts, ","))
	bin := filepath.Join(t.TempDir(), "holdover-node")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/holdover/holdover/cmd/holdover-node").CombinedOutput(); err != nil {
		t.Fatalf("go build holdover-node: %v\n%s", err, out)
	}
	return demoOptions{
		NodeBin: bin, ListenA: freeAddr(t), ListenB: freeAddr(t),
		Keyspace: fmt.Sprintf("holdover_demo_test_%d", time.Now().UnixNano()),
		Sessions: 100, Rate: 300, Warmup: 4 * time.Second, Continue: 2 * time.Second,
		FlushDelay: 100 * time.Millisecond, LeaseTTL: 3 * time.Second,
		WindowAllowance: 250 * time.Millisecond, ReadyTimeout: 60 * time.Second,
		Families: defaultDemoFamilies, FamilyMix: defaultDemoFamilyMix,
	}
}

// runDemoTest runs the demo with o and logs its output.
func runDemoTest(t *testing.T, o demoOptions) (demoResult, *lockedBuffer, error) {
	var out lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	res, err := runDemo(ctx, o, &out, &out)
	t.Logf("demo output:\n%s", out.String())
	return res, &out, err
}

// TestDemoAgainstRealNodes runs the demo flow in-process: two real
// holdover-node processes on a real Cassandra with the demo's families, a
// setting of the shared family written through A and served by B, SIGKILL
// of A, adoption of its sessions by B after A's lease expired, verification
// (each family held to its own window), the setting still served by B,
// SIGTERM of B, keyspace dropped.
func TestDemoAgainstRealNodes(t *testing.T) {
	o := demoTestOptions(t)
	res, out, err := runDemoTest(t, o)
	if err != nil {
		t.Fatal(err)
	}
	r := res.Report
	if !r.OK() {
		t.Fatalf("not OK: %s", verdict(r))
	}
	if r.Sessions != 100 || r.Redirected != 50 || r.Adopted != 50 || r.FinalChecked != 100 {
		t.Fatalf("sessions=%d redirected=%d adopted=%d final_checked=%d", r.Sessions, r.Redirected, r.Adopted, r.FinalChecked)
	}
	// B had to wait for A's lease (3s TTL) before it could adopt.
	if r.AdoptRetries == 0 || r.LeaseWait < time.Second || r.LeaseWait > o.LeaseTTL+5*time.Second {
		t.Fatalf("adopt_retries=%d lease_wait=%v", r.AdoptRetries, r.LeaseWait)
	}
	if r.Acknowledged < 1000 || r.AdoptP99Ms <= 0 {
		t.Fatalf("acknowledged=%d adopt_p99_ms=%v", r.Acknowledged, r.AdoptP99Ms)
	}
	if res.FalseFences != 0 {
		t.Fatalf("%d self-fences of running nodes", res.FalseFences)
	}
	// A's lease is read beside the redirect, and its end is still reported:
	// within the TTL and the skew peers allow after the kill.
	if res.LeaseFloor <= 0 || res.LeaseFloor > o.LeaseTTL+residency.DefaultMaxClockSkew {
		t.Fatalf("A's lease ended %v after its kill, want within the TTL %v and the skew", res.LeaseFloor, o.LeaseTTL)
	}
	// Failover: no session before A's lease ran out, all within the TTL
	// and some retries of it.
	if r.FailoverP50Ms < float64(r.LeaseWait.Milliseconds())-1 || r.FailoverMaxMs < r.FailoverP99Ms || r.FailoverMaxMs > float64((o.LeaseTTL+3*time.Second).Milliseconds()) {
		t.Fatalf("failover p50=%v p99=%v max=%v ms, lease wait %v", r.FailoverP50Ms, r.FailoverP99Ms, r.FailoverMaxMs, r.LeaseWait)
	}
	line := demoLine(res)
	if !regexp.MustCompile(`^demo: sessions=100 adopted=50 lost_beyond_window=0 refusals=\d+ false_fences=0 adopt_p99_ms=\d+\.\d failover_p50_ms=\d+ failover_p99_ms=\d+ failover_max_ms=\d+ shared_seen_ms=\d+$`).MatchString(line) {
		t.Fatalf("final line %q", line)
	}

	// Families: a quarter of the sessions in reg (1s), half in call (50ms),
	// the rest in none (100ms), each held to its own window, half of each
	// (give or take one) adopted from A.
	want := []struct {
		name     string
		delay    time.Duration
		sessions int
	}{{"", 100 * time.Millisecond, 25}, {"reg", time.Second, 25}, {"call", 50 * time.Millisecond, 50}}
	if len(r.Families) != len(want) {
		t.Fatalf("families %v", r.Families)
	}
	for i, w := range want {
		f := r.Families[i]
		if f.Name != w.name || f.FlushDelay != w.delay || f.Window != w.delay+o.WindowAllowance || f.Sessions != w.sessions ||
			f.Redirected < w.sessions/2 || f.Redirected > (w.sessions+1)/2 || f.Adopted+f.NotFound != f.Redirected || f.LostBeyondWindow != 0 || f.Acknowledged == 0 {
			t.Errorf("family %q: %v; want delay %v, %d sessions, half of them redirected, nothing lost beyond the window", w.name, f, w.delay, w.sessions)
		}
	}
	// Each family's sessions take events at the same rate as the others', so
	// each family's share of the acknowledged events is about its share of
	// the sessions: a light load must not leave one family refused. (A 1s
	// family under a 1.25s bound once stayed refused after one slow flush:
	// reg got 100 of about 1,000 events, and nothing else failed.)
	for i, w := range want {
		f := r.Families[i]
		share := r.Acknowledged * int64(w.sessions) / int64(r.Sessions)
		if f.Acknowledged < share/2 {
			t.Errorf("family %q: %d events acknowledged, under half of its share (%d of %d): its sessions were refused", w.name, f.Acknowledged, share, r.Acknowledged)
		}
	}
	// The shared family: B served A's setting within its delay (100ms),
	// refresh (500ms) and 2s, and after A's death.
	c := res.Shared
	if c == nil || c.Family != "settings" || c.Session != "settings:demo" || c.Bound != 2600*time.Millisecond ||
		c.Seen < 0 || c.Seen > c.Bound || !c.AfterKill || c.Err != nil {
		t.Fatalf("shared check %+v", c)
	}
	lines := strings.Join(familyLines(res), "\n")
	for _, want := range []string{"demo: family reg: delay 1s, sessions 25,", "demo: family call: delay 50ms, sessions 50,",
		"demo: family (none): delay 100ms, sessions 25,",
		"lost beyond window 0 (window 1.25s)", "demo: family settings (shared): settings:demo served by B", "still served by B after A's death"} {
		if !strings.Contains(lines, want) {
			t.Errorf("family lines lack %q:\n%s", want, lines)
		}
	}

	for _, want := range []string{"node A ready", "SIGKILL node A", "redirect of A done", "node B drained and exited", "dropped keyspace " + o.Keyspace,
		"families reg:delay=1s,ttl=1h,window=1.25s;call:delay=50ms,window=300ms;settings:shared,refresh=500ms", "settings:demo written through A, served by B after",
		"B still serves settings:demo after A's death"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	var n int
	s := cassandratest.Session(t, "")
	if err := s.Query("SELECT count(*) FROM system_schema.keyspaces WHERE keyspace_name = ?", o.Keyspace).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("keyspace %s still exists", o.Keyspace)
	}
}

// TestDemoTermKill: A gets SIGTERM and, 120 ms into its drain, SIGKILL (the
// creation-burst scenario's failure, on a small load): nothing acknowledged
// beyond the window is lost, nothing is left unrestored, no node fences.
func TestDemoTermKill(t *testing.T) {
	o := demoTestOptions(t)
	o.Sessions, o.Rate, o.Warmup = 200, 400, 3*time.Second
	o.Fail, o.KillAfter, o.Parallelism = "term-kill", 120*time.Millisecond, 64
	res, out, err := runDemoTest(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("not OK: %s", res.verdict())
	}
	if r := res.Report; r.Redirected != 100 || r.Adopted+r.NotFound != 100 {
		t.Fatalf("redirected=%d adopted=%d not_found=%d", r.Redirected, r.Adopted, r.NotFound)
	}
	if !strings.Contains(out.String(), "SIGTERM node A") {
		t.Error("output lacks the SIGTERM of A")
	}
}

// TestDemoNodeFailsToStart: a node that exits at once (invalid
// configuration) fails the demo with its last log lines, and leaves nothing
// running.
func TestDemoNodeFailsToStart(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "holdover-node")
	build := exec.Command("go", "build", "-o", bin, "github.com/holdover/holdover/cmd/holdover-node")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build holdover-node: %v\n%s", err, out)
	}
	o := demoOptions{NodeBin: bin, ListenA: freeAddr(t), ListenB: freeAddr(t), Keyspace: "holdover_demo_never",
		Sessions: 10, Rate: 10, Warmup: time.Second, Continue: time.Second,
		FlushDelay: 100 * time.Millisecond, LeaseTTL: 0, // invalid: the node exits with status 2
		ReadyTimeout: 20 * time.Second, KeepKeyspace: true}
	var out lockedBuffer
	_, err := runDemo(context.Background(), o, &out, &out)
	if err == nil {
		t.Fatalf("demo succeeded with an invalid node configuration:\n%s", out.String())
	}
	if !strings.Contains(err.Error(), "node A") || !strings.Contains(err.Error(), "exit status 2") ||
		!strings.Contains(err.Error(), "HOLDOVER_LEASE_TTL") {
		t.Fatalf("error does not explain: %v", err)
	}
}

func TestParseNodes(t *testing.T) {
	ns, err := parseNodes("A=http://127.0.0.1:1, B=http://127.0.0.1:2")
	if err != nil || len(ns) != 2 || ns[1] != (loadgen.Node{Name: "B", URL: "http://127.0.0.1:2"}) {
		t.Fatalf("%v %v", ns, err)
	}
	for _, bad := range []string{"", "A", "=http://x", "A=", "A=http://x,,"} {
		if _, err := parseNodes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	for _, args := range [][]string{nil, {"bogus"}, {"run"}, {"run", "-nodes", "A=http://127.0.0.1:1", "-fail", "A"}, {"demo"}, {"demo", "-keyspace", "x;y", "-node-bin", "/bin/true"}} {
		out.Reset()
		errb.Reset()
		code := run(context.Background(), args, &out, &errb)
		want := 2
		if len(args) > 1 && args[0] == "demo" {
			want = 1 // flags parse; the demo refuses the keyspace name
		}
		if code != want {
			t.Errorf("%q: exit %d, want %d (%s%s)", args, code, want, out.String(), errb.String())
		}
	}
}

func TestTailLog(t *testing.T) {
	var echo bytes.Buffer
	l := &tailLog{prefix: "[A] ", echo: &echo, max: 3}
	fmt.Fprint(l, "one\ntwo\nthr")
	fmt.Fprint(l, "ee\nfour\nfive\nsix")
	if got, want := l.tail(10), "  [A] three\n  [A] four\n  [A] five\n  [A] six\n"; got != want {
		t.Fatalf("tail %q, want %q", got, want)
	}
	if !strings.HasPrefix(echo.String(), "[A] one\n[A] two\n[A] three\n") {
		t.Fatalf("echo %q", echo.String())
	}
}

// The lines a node logs about its lease are kept apart from the tail, the
// last maxLeaseLines of them, so that a self-fence can be read after the
// run even when the node logged much since; self-fences are counted.
func TestTailLogKeepsTheLeaseLines(t *testing.T) {
	l := &tailLog{prefix: "[B] ", max: 2}
	fmt.Fprintln(l, `level=WARN msg="holdover: lease renewal failed" since_last_renewal=1.2s`)
	fmt.Fprintln(l, `level=ERROR msg="holdover: lease lapsed, node self-fenced" sessions=3`)
	for i := range maxLeaseLines + 5 {
		fmt.Fprintf(l, "other line %d\n", i)
	}
	if got, want := l.leaseLog(), "  [B] level=WARN msg=\"holdover: lease renewal failed\" since_last_renewal=1.2s\n  [B] level=ERROR msg=\"holdover: lease lapsed, node self-fenced\" sessions=3\n"; got != want {
		t.Fatalf("lease lines %q, want %q", got, want)
	}
	if l.fences() != 1 {
		t.Fatalf("%d self-fences counted, want 1", l.fences())
	}
	for i := range maxLeaseLines + 1 {
		fmt.Fprintf(l, "msg=\"holdover: lease renewed, node unfenced\" n=%d\n", i)
	}
	lines := strings.Split(strings.TrimSuffix(l.leaseLog(), "\n"), "\n")
	if len(lines) != maxLeaseLines || !strings.HasSuffix(lines[0], "n=1") || !strings.HasSuffix(lines[len(lines)-1], fmt.Sprintf("n=%d", maxLeaseLines)) {
		t.Fatalf("after %d more lease lines, kept %d: first %q, last %q", maxLeaseLines+1, len(lines), lines[0], lines[len(lines)-1])
	}
}

// overload names the flag it refuses and its accepted values, and runs
// nothing.
func TestOverloadFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-phases", "burst,soak"}, `-phases "burst,soak": want burst, steady or burst,steady`},
		{[]string{"-steady-share", "1.5"}, "-steady-share 1.5: want a share above 0 and at most 1"},
		{nil, "-node-bin is required"},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"overload"}, tc.args...)
		if len(tc.args) > 0 {
			args = append(args, "-node-bin", "/bin/true")
		}
		if code := run(context.Background(), args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) || out.Len() != 0 {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want 2 and %q", args, code, errb.String(), out.String(), tc.want)
		}
	}
}

// demo refuses -families and -family-mix it cannot run, naming the flag,
// and runs nothing.
func TestDemoFamilyFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-families", "reg:dealy=1s"}, `-families "reg:dealy=1s": family "reg": unknown option "dealy"`},
		{[]string{"-families", "reg:delay=2h"}, `-families "reg:delay=2h": family "reg": delay must be between 1ms and 1h, got 2h`},
		{[]string{"-family-mix", "reg"}, `-family-mix "reg": "reg" is not name=share`},
		{[]string{"-family-mix", "reg=1.5"}, "the share of reg, 1.5, is outside (0, 1]"},
		{[]string{"-family-mix", "reg=0.7,call=0.6"}, "the shares add up to 1.3, over 1"},
		{[]string{"-family-mix", "queue=0.1"}, "queue is not a family of -families"},
		{[]string{"-family-mix", "settings=0.1"}, "settings is a shared family"},
		{[]string{"-family-mix", "reg=0.1,reg=0.2"}, "reg appears twice"},
		{[]string{"-families", "", "-family-mix", "reg=0.1"}, "reg is not a family of -families"},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"demo", "-node-bin", "/bin/true"}, tc.args...)
		if code := run(context.Background(), args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) || out.Len() != 0 {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want 2 and %q", args, code, errb.String(), out.String(), tc.want)
		}
	}
	// Both empty: no families.
	d, err := parseDemoFamilies("", "", 100*time.Millisecond)
	if err != nil || len(d.fams) != 0 || len(d.mix) != 0 {
		t.Fatalf("no families: %+v %v", d, err)
	}
	if _, ok := d.shared(); ok {
		t.Fatal("a shared family without families")
	}
	d, err = parseDemoFamilies(defaultDemoFamilies, defaultDemoFamilyMix, 100*time.Millisecond)
	if err != nil || len(d.mix) != 2 || d.mix[0] != (loadgen.FamilyShare{Name: "reg", Share: 0.25}) {
		t.Fatalf("the defaults: %+v %v", d, err)
	}
	d.boundWindows(250 * time.Millisecond)
	if got := d.fams.String(); got != "reg:delay=1s,ttl=1h,window=1.25s;call:delay=50ms,window=300ms;settings:shared,refresh=500ms" {
		t.Fatalf("the families the nodes run with: %s", got)
	}
	if f, ok := d.shared(); !ok || f.Name != "settings" || f.Refresh != 500*time.Millisecond {
		t.Fatalf("the shared family: %+v %v", f, ok)
	}
}
