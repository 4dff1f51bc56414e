//go:build drills

package sip

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// Addresses on loopback (see doc.go).
const (
	proxyHost  = "127.0.0.31"
	sippHost   = "127.0.0.35"
	clientAddr = "127.0.0.36:5070"
	sipPort    = 5060
	statsPort  = 18090
)

var nodeHosts = []string{"127.0.0.32", "127.0.0.33", "127.0.0.34"}

// Node settings: the product's default flush delay, a short lease so a
// dead node's dialogs are adoptable soon, and the hold a request waits for
// a live owner's lease (the node's default: lease TTL + clock skew + 500 ms).
const (
	flushDelay = 100 * time.Millisecond
	leaseTTL   = 3 * time.Second
	hold       = leaseTTL + 100*time.Millisecond + 500*time.Millisecond
	// window is what a crash may lose: a change committed less than this
	// before the kill (flush delay + the 250 ms flush-latency allowance
	// the other drills use).
	window = flushDelay + 250*time.Millisecond
	// Kamailio's timers: an initial INVITE whose node sends nothing for
	// frInitial is sent to the next node; an in-dialog request gets
	// frInDialog, longer than the hold (see kamailio.cfg).
	frInitial  = 1500 * time.Millisecond
	frInDialog = hold + 2400*time.Millisecond
)

// variant is one run of the drill.
type variant struct {
	Name   string         `json:"name"`
	Signal syscall.Signal `json:"-"`
	Calls  int            `json:"calls_planned"`
	Rate   float64        `json:"calls_per_s"`
	Hold   time.Duration  `json:"-"`
	FailAt time.Duration  `json:"-"` // after SIPp starts
	AORs   int            `json:"registrations_planned"`
	// AfterCommit: the failure comes right after the victim's next dialog
	// commit past FailAt, so that dialog is lost inside the window.
	AfterCommit bool `json:"-"`
}

func variants(t *testing.T) []variant {
	kill := variant{Name: "kill", Signal: syscall.SIGKILL, Calls: 240, Rate: 8, Hold: 6 * time.Second, FailAt: 12 * time.Second, AORs: 30}
	drain := kill
	drain.Name, drain.Signal = "drain", syscall.SIGTERM
	if os.Getenv("SIP_DRILL_SHORT") == "1" {
		kill.Calls, kill.Hold, kill.FailAt, kill.AORs = 120, 5*time.Second, 7*time.Second, 15
		return []variant{kill}
	}
	var vs []variant
	for _, name := range strings.Fields(envOr("SIP_DRILL_VARIANTS", "kill drain kill_in_window")) {
		switch name {
		case "kill":
			vs = append(vs, kill)
		case "drain":
			vs = append(vs, drain)
		case "kill_in_window":
			w := kill
			w.Name, w.AfterCommit = name, true
			vs = append(vs, w)
		default:
			t.Fatalf("SIP_DRILL_VARIANTS: kill, drain, kill_in_window, got %q", name)
		}
	}
	return vs
}

// flushBeforeAnswer: SIP_DRILL_FLUSH_BEFORE_ANSWER=1 runs the nodes with
// SIPNODE_FLUSH_BEFORE_ANSWER=true (setup_p50_ms then shows the cost).
func flushBeforeAnswer() bool { return os.Getenv("SIP_DRILL_FLUSH_BEFORE_ANSWER") == "1" }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// TestSIPFailover is the sip_failover drill.
func TestSIPFailover(t *testing.T) {
	kamailio := tool(t, "kamailio", "kamailio")
	sipp := tool(t, "sipp", "sip-tester")
	outDir, err := filepath.Abs(envOr("HOLDOVER_E2E_OUT", "../out"))
	if err != nil {
		t.Fatal(err)
	}
	bin := buildNode(t, t.TempDir())
	hosts, port, err := cassandratest.Ensure()
	if err != nil {
		t.Fatalf("Cassandra: %v", err)
	}
	rep := report{Drill: "sip_failover", Setup: setupOf(hosts, port)}
	for _, v := range variants(t) {
		t.Run(v.Name, func(t *testing.T) {
			r := runVariant(t, v, bin, kamailio, sipp, filepath.Join(outDir, "sip-logs", v.Name))
			rep.Variants = append(rep.Variants, r)
			t.Log(r.line())
			for _, f := range r.Problems {
				t.Error(f)
			}
		})
	}
	rep.total()
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outDir, "sip.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Variants {
		fmt.Println(r.line())
	}
	fmt.Println(rep.line())
}

// runVariant runs one variant and returns its result; Problems lists what
// failed.
func runVariant(t *testing.T, v variant, bin, kamailio, sipp, logDir string) *result {
	if err := os.RemoveAll(logDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ks, drop, err := cassandratest.TempKeyspace()
	if err != nil {
		t.Fatalf("keyspace: %v", err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Logf("drop keyspace %s: %v", ks, err)
		}
	})
	hosts, port, _ := cassandratest.Ensure()
	ctx := context.Background()
	began := time.Now()

	// Three nodes; the first creates the schema before the others open.
	nodes := make([]*proc, len(nodeHosts))
	startNode := func(i int) {
		id := fmt.Sprintf("sip-%c", 'a'+i)
		nodes[i] = start(t, id, filepath.Join(logDir, id+".log"), []string{
			"HOLDOVER_CASSANDRA_HOSTS=" + strings.Join(hosts, ","),
			"HOLDOVER_CASSANDRA_PORT=" + strconv.Itoa(port),
			"HOLDOVER_KEYSPACE=" + ks,
			"HOLDOVER_NODE_ID=" + id,
			"HOLDOVER_FLUSH_DELAY=" + flushDelay.String(),
			"HOLDOVER_LEASE_TTL=" + leaseTTL.String(),
			"HOLDOVER_STATE_TTL=1h",
			"SIPNODE_LISTEN=" + fmt.Sprintf("%s:%d", nodeHosts[i], sipPort),
			"SIPNODE_STATS=" + fmt.Sprintf("%s:%d", nodeHosts[i], statsPort),
			"SIPNODE_HOLD=" + hold.String(),
			"SIPNODE_FLUSH_BEFORE_ANSWER=" + strconv.FormatBool(flushBeforeAnswer()),
		}, bin)
	}
	ready := func(i int) bool { _, err := fetchStats(nodeHosts[i]); return err == nil }
	startNode(0)
	if !waitFor(ctx, 90*time.Second, func() bool { return ready(0) }) {
		t.Fatalf("node sip-a not ready in 90 s; see %s", nodes[0].log)
	}
	for i := 1; i < len(nodeHosts); i++ {
		startNode(i)
	}
	for i := 1; i < len(nodeHosts); i++ {
		if !waitFor(ctx, 90*time.Second, func() bool { return ready(i) }) {
			t.Fatalf("node %s not ready in 90 s; see %s", nodes[i].name, nodes[i].log)
		}
	}

	// Kamailio.
	kam := startKamailio(t, kamailio, logDir)
	time.Sleep(2 * time.Second) // two probe rounds: every node active
	if !kam.running() {
		t.Fatalf("kamailio exited; see %s", kam.log)
	}

	r := &result{Name: v.Name, Signal: v.Signal.String(), Keyspace: ks, FlushDelayMS: ms(flushDelay),
		LeaseTTLMS: ms(leaseTTL), HoldMS: ms(hold), WindowMS: ms(window), KamailioInDialogTimerMS: ms(frInDialog),
		FlushBeforeAnswer: flushBeforeAnswer(), CallsPlanned: v.Calls, CallsPerS: v.Rate, HoldCallMS: ms(v.Hold), FailAfterMS: ms(v.FailAt)}

	// Registrations, before any call.
	regs, err := newRegistrar(ctx)
	if err != nil {
		t.Fatalf("registration client: %v", err)
	}
	defer regs.close()
	aors := make([]string, v.AORs)
	for i := range aors {
		aors[i] = fmt.Sprintf("phone%03d", i)
		if err := regs.register(ctx, aors[i]); err != nil {
			t.Fatalf("REGISTER %s: %v", aors[i], err)
		}
	}
	r.Registrations = len(aors)

	// SIPp, and the failure at FailAt.
	victim := nodes[0]
	sippDir := filepath.Join(logDir, "sipp")
	_ = os.MkdirAll(sippDir, 0o755)
	scenario, _ := filepath.Abs("call_hold.xml")
	sp := start(t, "sipp", filepath.Join(sippDir, "screen.log"), nil, sipp,
		fmt.Sprintf("%s:%d", proxyHost, sipPort),
		"-sf", scenario, "-i", sippHost, "-p", strconv.Itoa(sipPort),
		"-r", strconv.FormatFloat(v.Rate, 'f', -1, 64), "-m", strconv.Itoa(v.Calls),
		"-d", strconv.FormatInt(v.Hold.Milliseconds(), 10),
		"-recv_timeout", "30000", "-max_non_invite_retrans", "7",
		"-trace_stat", "-stf", filepath.Join(sippDir, "stat.csv"), "-fd", "1",
		"-trace_err", "-error_file", filepath.Join(sippDir, "errors.log"),
		"-trace_logs", "-log_file", filepath.Join(sippDir, "calls.log"),
		"-nostdin")
	sippStart := time.Now()
	time.Sleep(v.FailAt)
	if v.AfterCommit {
		// Kill right after the victim commits a dialog: inside the window.
		if !waitForLine(victim.log, `"msg":"dialog created"`, 10*time.Second) {
			r.problem("%s created no dialog within 10 s after %s", victim.name, v.FailAt)
		}
	}
	r.failedAt = time.Now()
	if err := victim.signal(v.Signal); err != nil {
		t.Fatalf("%s %s: %v", v.Signal, victim.name, err)
	}
	t.Logf("%s sent to %s %.1f s after SIPp started", v.Signal, victim.name, time.Since(sippStart).Seconds())
	code, err := victim.wait(60 * time.Second)
	switch {
	case err != nil:
		r.problem("%s did not exit after %s: %v", victim.name, v.Signal, err)
	case v.Signal == syscall.SIGTERM && code != 0:
		r.problem("%s exited %d after SIGTERM (want 0: drained)", victim.name, code)
	}
	r.VictimExitMS = ms(time.Since(r.failedAt))

	sippTimeout := time.Duration(float64(v.Calls)/v.Rate*float64(time.Second)) + v.Hold + 90*time.Second
	code, err = sp.wait(sippTimeout)
	if err != nil {
		r.problem("SIPp: %v", err)
		_ = sp.signal(syscall.SIGKILL)
		_, _ = sp.wait(5 * time.Second)
	}
	r.SIPpExit = code

	// Every registration, queried after the failure: whichever survivor the
	// proxy picks answers with the binding (adopting it if it was the
	// victim's).
	for _, aor := range aors {
		ok, err := regs.query(ctx, aor)
		switch {
		case err != nil:
			r.RegistrationErrors = append(r.RegistrationErrors, fmt.Sprintf("%s: %v", aor, err))
		case ok:
			r.RegistrationsKept++
		default:
			r.RegistrationErrors = append(r.RegistrationErrors, aor+": binding missing")
		}
	}

	// The survivors' counters, then a graceful stop.
	survivors := nodes[1:]
	for i, n := range survivors {
		s, err := fetchStats(nodeHosts[i+1])
		if err != nil {
			r.problem("stats of %s: %v", n.name, err)
			continue
		}
		r.addNode(n.name, s)
	}
	for _, n := range survivors {
		_ = n.signal(syscall.SIGTERM)
	}
	for _, n := range survivors {
		if code, err := n.wait(60 * time.Second); err != nil || code != 0 {
			r.problem("%s: exit %d after SIGTERM (%v)", n.name, code, err)
		}
	}
	_ = kam.signal(syscall.SIGTERM)
	if _, err := kam.wait(10 * time.Second); err != nil {
		_ = kam.signal(syscall.SIGKILL)
	}

	analyse(t, r, v, sippDir, kam.log, victim, survivors)
	r.Seconds = time.Since(began).Seconds()
	return r
}

// waitForLine waits until a line containing pattern is appended to the file
// at path (after the call), polling every millisecond, up to d.
func waitForLine(path, pattern string, d time.Duration) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	off, _ := f.Seek(0, io.SeekEnd)
	deadline := time.Now().Add(d)
	buf := make([]byte, 64<<10)
	var tail string
	for time.Now().Before(deadline) {
		n, _ := f.ReadAt(buf, off)
		if n > 0 {
			off += int64(n)
			tail += string(buf[:n])
			if strings.Contains(tail, pattern) {
				return true
			}
			if i := strings.LastIndexByte(tail, '\n'); i >= 0 {
				tail = tail[i+1:]
			}
			continue
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

// fetchStats reads a node's /stats.
func fetchStats(host string) (nodeStats, error) {
	var s nodeStats
	c := http.Client{Timeout: 2 * time.Second}
	res, err := c.Get(fmt.Sprintf("http://%s:%d/stats", host, statsPort))
	if err != nil {
		return s, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return s, fmt.Errorf("status %s", res.Status)
	}
	return s, json.NewDecoder(res.Body).Decode(&s)
}

// startKamailio writes the configuration and the dispatcher list into
// logDir and starts Kamailio in the foreground, logging to stderr.
func startKamailio(t *testing.T, bin, logDir string) *proc {
	t.Helper()
	tmpl, err := template.ParseFiles("kamailio.cfg")
	if err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(logDir, "dispatcher.list")
	var lines []string
	for _, h := range nodeHosts {
		lines = append(lines, fmt.Sprintf("1 sip:%s:%d 0 0", h, sipPort))
	}
	if err := os.WriteFile(list, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(logDir, "kamailio.cfg")
	f, err := os.Create(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	err = tmpl.Execute(f, map[string]any{
		"Debug": 2, "Listen": fmt.Sprintf("%s:%d", proxyHost, sipPort), "Alias": fmt.Sprintf("%s:%d", proxyHost, sipPort),
		"ModulePath": modulePath(), "DispatcherList": list,
		"FrInitialMS": frInitial.Milliseconds(), "FrInDialogMS": frInDialog.Milliseconds(),
	})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	run := t.TempDir()
	return start(t, "kamailio", filepath.Join(logDir, "kamailio.log"), nil, bin,
		"-DD", "-E", "-f", cfgPath, "-Y", run, "-m", "64", "-M", "8")
}

// modulePath is where Debian's kamailio keeps its modules.
func modulePath() string {
	matches, _ := filepath.Glob("/usr/lib/*/kamailio/modules")
	slices.Sort(matches)
	if len(matches) > 0 {
		return matches[0]
	}
	return "/usr/lib/x86_64-linux-gnu/kamailio/modules"
}
