package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/internal/testbench/loadgen"
	"github.com/holdover/holdover/residency"
)

// demoOptions configures the demo; the flags of "holdover-load demo".
type demoOptions struct {
	NodeBin         string
	ListenA         string
	ListenB         string
	Keyspace        string // empty: holdover_demo_<unix seconds>
	Sessions        int
	Rate            float64
	Warmup          time.Duration // load before node A is killed
	Continue        time.Duration // load after the redirect
	FlushDelay      time.Duration
	LeaseTTL        time.Duration
	MaxWindow       time.Duration // HOLDOVER_MAX_WINDOW of the nodes; 0: flush delay + allowance
	WindowAllowance time.Duration
	Fail            string        // "kill", or "term-kill": SIGTERM, then SIGKILL KillAfter into the drain
	KillAfter       time.Duration // term-kill: how far into A's drain the SIGKILL comes
	Parallelism     int           // sessions adopted at once by the redirect
	// TakeoverOnExpiry runs the nodes with HOLDOVER_NODE_TAKEOVER_ON_EXPIRY.
	TakeoverOnExpiry bool
	// AdoptWait is HOLDOVER_NODE_ADOPT_WAIT of the nodes: how long an
	// adoption waits for a live owner's lease to run out before answering 409.
	AdoptWait time.Duration
	// MaxHistory bounds each session's history (loadgen.Config.MaxHistory);
	// 0: unbounded.
	MaxHistory   int
	ReadyTimeout time.Duration
	KeepKeyspace bool
	Verbose      bool // copy the nodes' logs to the output
	// Families is HOLDOVER_FAMILIES of the nodes; empty: none. Its first
	// shared family, if any, is shown converging from A to B.
	Families string
	// FamilyMix puts shares of the sessions in Families's owned families,
	// "name=share,..."; empty: every session in no family.
	FamilyMix string
}

// demoResult is what the demo measured.
type demoResult struct {
	Keyspace string
	Report   loadgen.Report
	// FalseFences counts self-fences of a node that was neither stopped nor
	// failed at the time: B's, and A's before its failure.
	FalseFences int
	// Shared is what the demo saw of its shared family; nil without one.
	Shared *sharedCheck
	// LeaseFloor is how long after A's SIGKILL its lease ended as peers
	// judge it (its last renewal + HOLDOVER_LEASE_TTL): no session of A can
	// fail over sooner. Zero when unknown.
	LeaseFloor time.Duration
}

// demoWaitCreated bounds how long A's failure waits, past the warm-up, for
// every session of A to exist (its creation acknowledged a durability window
// before): on a machine busy enough that A refuses new sessions for a while
// (creations backed up), failing it earlier would leave sessions that never
// existed, which B cannot adopt.
const demoWaitCreated = 20 * time.Second

func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o demoOptions
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.NodeBin, "node-bin", "", "`path` of the holdover-node binary (required; make demo builds bin/holdover-node)")
	demoFlags(fs, &o, demoOptions{Sessions: 200, Rate: 300, Warmup: 10 * time.Second, Continue: 4 * time.Second,
		LeaseTTL: 5 * time.Second, KillAfter: 120 * time.Millisecond, Parallelism: 64})
	fs.StringVar(&o.Keyspace, "keyspace", "", "keyspace (default holdover_demo_<unix time>, created by the nodes, dropped at the end)")
	fs.DurationVar(&o.MaxWindow, "max-window", 0, "HOLDOVER_MAX_WINDOW of the nodes (0: the window checked, flush delay + allowance)")
	fs.StringVar(&o.Fail, "fail", "kill", "how A fails: kill (SIGKILL), or term-kill (SIGTERM, then SIGKILL -kill-after into its drain)")
	fs.BoolVar(&o.KeepKeyspace, "keep-keyspace", false, "do not drop the keyspace at the end")
	fs.BoolVar(&o.Verbose, "v", false, "copy the nodes' logs to stderr")
	fs.StringVar(&o.Families, "families", defaultDemoFamilies, "HOLDOVER_FAMILIES of the nodes (\"\": none); the first shared family is shown converging from A to B")
	fs.StringVar(&o.FamilyMix, "family-mix", defaultDemoFamilyMix, "shares of the sessions in -families' owned families, name=share,... (\"\": none); the rest are in no family")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.NodeBin == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "holdover-load demo: -node-bin is required and no arguments are taken")
		return 2
	}
	if o.Fail != "kill" && o.Fail != "term-kill" {
		fmt.Fprintf(stderr, "holdover-load demo: -fail %q: want kill or term-kill\n", o.Fail)
		return 2
	}
	if _, err := parseDemoFamilies(o.Families, o.FamilyMix, o.FlushDelay); err != nil {
		fmt.Fprintf(stderr, "holdover-load demo: %v\n", err)
		return 2
	}
	res, err := runDemo(ctx, o, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stdout, "demo: FAILED: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "demo: report: %v\n", res.Report)
	for _, l := range familyLines(res) {
		fmt.Fprintln(stdout, l)
	}
	fmt.Fprintln(stdout, demoLine(res))
	if !res.OK() {
		fmt.Fprintf(stdout, "demo: FAILED: %s\n", res.verdict())
		return 1
	}
	return 0
}

// demoFlags defines the flags demo and overload share, with d's defaults.
func demoFlags(fs *flag.FlagSet, o *demoOptions, d demoOptions) {
	fs.StringVar(&o.ListenA, "listen-a", "127.0.0.1:18081", "listen address of node A")
	fs.StringVar(&o.ListenB, "listen-b", "127.0.0.1:18082", "listen address of node B")
	fs.IntVar(&o.Sessions, "sessions", d.Sessions, "sessions, half on each node")
	fs.Float64Var(&o.Rate, "rate", d.Rate, "events per second over all sessions")
	fs.DurationVar(&o.Warmup, "warmup", d.Warmup, "load before node A fails")
	fs.DurationVar(&o.Continue, "continue", d.Continue, "load after A's sessions were redirected to B")
	fs.DurationVar(&o.FlushDelay, "flush-delay", 100*time.Millisecond, "HOLDOVER_FLUSH_DELAY of the nodes")
	fs.DurationVar(&o.LeaseTTL, "lease-ttl", d.LeaseTTL, "HOLDOVER_LEASE_TTL of the nodes")
	fs.DurationVar(&o.WindowAllowance, "window-allowance", 250*time.Millisecond, "flush latency allowed on top of the flush delay (the window checked is their sum)")
	fs.DurationVar(&o.KillAfter, "kill-after", d.KillAfter, "term-kill: time from SIGTERM to SIGKILL")
	fs.IntVar(&o.Parallelism, "redirect-parallelism", d.Parallelism, "sessions of A adopted at once")
	fs.BoolVar(&o.TakeoverOnExpiry, "takeover-on-expiry", d.TakeoverOnExpiry, "run the nodes with HOLDOVER_NODE_TAKEOVER_ON_EXPIRY=true: B takes over all of A's sessions the moment A's lease expires")
	fs.DurationVar(&o.AdoptWait, "adopt-wait", d.AdoptWait, "HOLDOVER_NODE_ADOPT_WAIT of the nodes: how long B holds a request for one of A's sessions while A's lease is live (0: answer 409 at once, the generator retries)")
	fs.IntVar(&o.MaxHistory, "max-history", d.MaxHistory, "history entries a session holds at most: past it, its appends become updates and its state stops growing (0: unbounded)")
	fs.DurationVar(&o.ReadyTimeout, "ready-timeout", 90*time.Second, "how long a node may take to become ready")
}

// OK reports whether the demo proved the promises: the load generator's
// verdict, no node fenced itself while it ran, and B served the shared
// family's setting in time and after A's death.
func (r demoResult) OK() bool { return r.Report.OK() && r.FalseFences == 0 && r.Shared.OK() }

func (r demoResult) verdict() string {
	var v []string
	if !r.Report.OK() {
		v = append(v, verdict(r.Report))
	}
	if r.FalseFences > 0 {
		v = append(v, fmt.Sprintf("%d false self-fence(s) of a running node", r.FalseFences))
	}
	if !r.Shared.OK() {
		v = append(v, r.Shared.verdict())
	}
	return strings.Join(v, "; ")
}

// demoLine is the demo's last line. With a shared family it ends with
// shared_seen_ms, how long B took to serve the setting written through A
// (-1: not within the bound).
func demoLine(res demoResult) string {
	r := res.Report
	line := fmt.Sprintf("demo: sessions=%d adopted=%d lost_beyond_window=%d refusals=%d false_fences=%d adopt_p99_ms=%.1f failover_p50_ms=%.0f failover_p99_ms=%.0f failover_max_ms=%.0f",
		r.Sessions, r.Adopted, r.LostBeyondWindow, r.Errors["http_503"], res.FalseFences, r.AdoptP99Ms, r.FailoverP50Ms, r.FailoverP99Ms, r.FailoverMaxMs)
	if c := res.Shared; c != nil {
		seen := int64(-1)
		if c.Seen >= 0 {
			seen = c.Seen.Milliseconds()
		}
		line += fmt.Sprintf(" shared_seen_ms=%d", seen)
	}
	return line
}

// runDemo starts nodes A and B on a fresh keyspace, drives load, SIGKILLs A
// after the warm-up, redirects A's sessions to B (which must wait for A's
// lease to expire), continues, SIGTERMs B and drops the keyspace. Whatever
// happens, both nodes are dead when it returns. An error means the demo could
// not be carried out; the report says what it found.
func runDemo(ctx context.Context, o demoOptions, stdout, stderr io.Writer) (res demoResult, err error) {
	logf := func(format string, args ...any) { fmt.Fprintf(stdout, "demo: "+format+"\n", args...) }
	if st, err := os.Stat(o.NodeBin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return res, fmt.Errorf("-node-bin %q is not an executable file", o.NodeBin)
	}
	for _, l := range []string{o.ListenA, o.ListenB} {
		if err := portFree(l); err != nil {
			return res, err
		}
	}
	res.Keyspace = o.Keyspace
	if res.Keyspace == "" {
		res.Keyspace = fmt.Sprintf("holdover_demo_%d", time.Now().Unix())
	}
	if !keyspaceRE.MatchString(res.Keyspace) {
		return res, fmt.Errorf("-keyspace %q is not a CQL identifier of at most 48 characters", res.Keyspace)
	}
	hosts := os.Getenv("HOLDOVER_CASSANDRA_HOSTS")
	if hosts == "" {
		hosts = "127.0.0.1"
	}
	fams, err := parseDemoFamilies(o.Families, o.FamilyMix, o.FlushDelay)
	if err != nil {
		return res, err
	}
	maxWindow := o.MaxWindow
	if maxWindow == 0 {
		maxWindow = o.FlushDelay + o.WindowAllowance
	}
	// Each owned family with a delay of its own and no window= is bounded
	// by the window the load generator holds it to: its delay + allowance.
	fams.boundWindows(o.WindowAllowance)
	logf("keyspace %s on Cassandra at %s; nodes A=%s B=%s, flush delay %v, window bound %v, lease TTL %v",
		res.Keyspace, hosts, o.ListenA, o.ListenB, o.FlushDelay, maxWindow, o.LeaseTTL)
	if len(fams.fams) > 0 {
		logf("families %s; load mix %s", fams.fams, cmp.Or(o.FamilyMix, "none"))
	}

	var echo io.Writer
	if o.Verbose {
		echo = stderr
	}
	var procs []*nodeProc
	keyspaceUsed := false
	defer func() {
		for _, p := range procs {
			p.kill()
		}
		if keyspaceUsed && !o.KeepKeyspace {
			if derr := dropKeyspace(hosts, res.Keyspace); derr != nil {
				logf("could not drop keyspace %s: %v", res.Keyspace, derr)
				err = errors.Join(err, derr)
			} else {
				logf("dropped keyspace %s", res.Keyspace)
			}
		}
	}()

	start := func(name, id, listen string) (*nodeProc, error) {
		env := []string{
			"HOLDOVER_NODE_LISTEN=" + listen,
			"HOLDOVER_NODE_ID=" + id,
			"HOLDOVER_KEYSPACE=" + res.Keyspace,
			"HOLDOVER_CASSANDRA_HOSTS=" + hosts,
			"HOLDOVER_FLUSH_DELAY=" + o.FlushDelay.String(),
			"HOLDOVER_LEASE_TTL=" + o.LeaseTTL.String(),
			// The nodes refuse (503) what they could not write within the
			// window the load generator holds them to.
			"HOLDOVER_MAX_WINDOW=" + maxWindow.String(),
			"HOLDOVER_NODE_TAKEOVER_ON_EXPIRY=" + strconv.FormatBool(o.TakeoverOnExpiry),
			"HOLDOVER_NODE_ADOPT_WAIT=" + o.AdoptWait.String(),
			"HOLDOVER_FAMILIES=" + fams.fams.String(),
		}
		t0 := time.Now()
		p, err := startNode(name, o.NodeBin, env, echo)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		keyspaceUsed = true
		logf("node %s (%s) starting on %s, pid %d", name, id, listen, p.cmd.Process.Pid)
		if err := loadgen.WaitReady(ctx, "http://"+listen, o.ReadyTimeout, p.alive); err != nil {
			return nil, fmt.Errorf("node %s did not become ready: %v\nlast lines of its log:\n%s", name, err, p.tail(30))
		}
		logf("node %s ready in %.1fs", name, time.Since(t0).Seconds())
		return p, nil
	}
	// One after the other: the first creates the schema.
	a, err := start("A", "demo-a", o.ListenA)
	if err != nil {
		return res, err
	}
	b, err := start("B", "demo-b", o.ListenB)
	if err != nil {
		return res, err
	}

	how := "SIGKILL"
	if o.Fail == "term-kill" {
		how = fmt.Sprintf("SIGTERM and, %v into its drain, SIGKILL", o.KillAfter)
	}
	logf("load: %d sessions at %.0f events/s; %s of A after %v, or once every session of A exists if that is later (at most %v more); A's sessions then go to B",
		o.Sessions, o.Rate, how, o.Warmup, demoWaitCreated)
	var aFences int // A's self-fences before it failed
	// A's lease is read on a connection opened before the load: opening one
	// after the kill took up to seconds on the loaded machine, and the
	// redirect waited for it.
	leases, err := connect(hosts)
	if err != nil {
		return res, fmt.Errorf("connect to read A's lease: %w", err)
	}
	defer leases.Close()
	var leaseRead sync.WaitGroup // the read after A's kill
	// The shared family: a setting written through A while the load runs,
	// watched until B serves it; A is not killed before that is settled.
	sharedDone := make(chan struct{})
	var shared *sharedCheck // set before sharedDone closes
	g, err := loadgen.New(loadgen.Config{
		Nodes:               []loadgen.Node{{Name: "A", URL: "http://" + o.ListenA}, {Name: "B", URL: "http://" + o.ListenB}},
		Sessions:            o.Sessions,
		Rate:                o.Rate,
		Duration:            o.Warmup + o.Continue,
		WindowAllowance:     o.WindowAllowance,
		AdoptTimeout:        o.LeaseTTL + 10*time.Second,
		RedirectParallelism: o.Parallelism,
		MaxHistory:          o.MaxHistory,
		Families:            fams.mix,
		Progress:            stdout,
		Failure: &loadgen.Failure{
			Node:        "A",
			After:       o.Warmup,
			ContinueFor: o.Continue,
			WaitCreated: demoWaitCreated,
			Fail: func(context.Context, loadgen.Node) error {
				<-sharedDone
				aFences = a.log.fences()
				if o.Fail == "term-kill" {
					logf("SIGTERM node A (pid %d); SIGKILL in %v", a.cmd.Process.Pid, o.KillAfter)
					if a.signal(syscall.SIGTERM, o.KillAfter) {
						logf("node A exited before the SIGKILL")
						return nil
					}
				}
				logf("SIGKILL node A (pid %d)", a.cmd.Process.Pid)
				killed := time.Now()
				if !a.signal(syscall.SIGKILL, 10*time.Second) {
					return errors.New("node A still runs 10s after SIGKILL")
				}
				logf("node A is dead; B may adopt its sessions once A's lease (TTL %v) expires", o.LeaseTTL)
				// The redirect starts now, as a balancer's would: the read
				// of A's lease, for the floor, runs beside it.
				leaseRead.Add(1)
				go func() {
					defer leaseRead.Done()
					if end, err := leaseEnd(leases, res.Keyspace, "demo-a", residency.DefaultMaxClockSkew); err != nil {
						logf("A's lease: %v", err)
					} else {
						res.LeaseFloor = end.Sub(killed)
						logf("A's lease ends %d ms after the kill as peers judge it (last renewal + TTL %v): the floor of its sessions' failover",
							res.LeaseFloor.Milliseconds(), o.LeaseTTL)
					}
				}()
				return nil
			},
		},
	})
	if err != nil {
		return res, err
	}
	if f, ok := fams.shared(); ok {
		go func() {
			defer close(sharedDone)
			c := writeAndWatch(ctx, f, o.FlushDelay, "http://"+o.ListenA, "http://"+o.ListenB)
			shared = c
			switch {
			case c.Err != nil:
				logf("shared family %s: %v", c.Family, c.Err)
			case c.Seen < 0:
				logf("shared family %s: %s written through A, not served by B within %v", c.Family, c.Session, c.Bound)
			default:
				logf("shared family %s: %s written through A, served by B after %d ms (bound %v: flush delay, refresh and %v)",
					c.Family, c.Session, c.Seen.Milliseconds(), c.Bound, sharedSlack)
			}
		}()
	} else {
		close(sharedDone)
	}
	res.Report, err = g.Run(ctx)
	leaseRead.Wait()
	<-sharedDone
	res.Shared = shared
	res.FalseFences = aFences + b.log.fences()
	for _, n := range []struct {
		name   string
		fences int
		p      *nodeProc
	}{{"A", aFences, a}, {"B", b.log.fences(), b}} {
		if n.fences > 0 {
			logf("node %s fenced itself %d time(s) while running; its lease lines:\n%s", n.name, n.fences, n.p.log.leaseLog())
		}
	}
	if err != nil {
		return res, err
	}
	if e := b.alive(); e != nil {
		return res, fmt.Errorf("%v during the load\nlast lines of its log:\n%s", e, b.tail(30))
	}
	if c := res.Shared; c != nil && c.Err == nil && c.Seen >= 0 {
		c.checkAfterKill(ctx, "http://"+o.ListenB)
		if c.AfterKill {
			logf("shared family %s: B still serves %s after A's death", c.Family, c.Session)
		} else {
			logf("shared family %s: B no longer serves %s after A's death (%v)", c.Family, c.Session, c.Err)
		}
	}

	t0 := time.Now()
	logf("SIGTERM node B")
	if !b.signal(syscall.SIGTERM, 30*time.Second) {
		return res, fmt.Errorf("node B still runs 30s after SIGTERM\nlast lines of its log:\n%s", b.tail(30))
	}
	if b.err != nil {
		return res, fmt.Errorf("node B did not shut down cleanly (%v)\nlast lines of its log:\n%s", b.exitDesc(), b.tail(30))
	}
	logf("node B drained and exited in %.1fs", time.Since(t0).Seconds())
	return res, nil
}

var keyspaceRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,47}$`)

// portFree fails when something already listens on addr (a node left over
// from another run, say).
func portFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot use %s for a node: %v", addr, err)
	}
	return l.Close()
}

// dropKeyspace drops keyspace ks.
func dropKeyspace(hosts, ks string) error {
	s, err := connect(hosts)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Query("DROP KEYSPACE IF EXISTS " + ks).Exec()
}

// leaseEnd reads node's lease in keyspace ks and returns when peers stop
// counting it live (store.Lease.Ends with skew).
func leaseEnd(s *gocql.Session, ks, node string, skew time.Duration) (time.Time, error) {
	var (
		l     store.Lease
		ttlMS int64
	)
	if err := s.Query("SELECT renewed_at, ttl_ms FROM "+ks+"."+store.DefaultTables.Leases+" WHERE node = ?", node).Scan(&l.RenewedAt, &ttlMS); err != nil {
		return time.Time{}, fmt.Errorf("read the lease of %s: %w", node, err)
	}
	l.TTL = time.Duration(ttlMS) * time.Millisecond
	return l.Ends(skew), nil
}

// connect opens a gocql session; hosts is a comma-separated list, the port
// HOLDOVER_CASSANDRA_PORT (default 9042), with password authentication when
// HOLDOVER_USERNAME is set.
func connect(hosts string) (*gocql.Session, error) {
	c := gocql.NewCluster(strings.Split(hosts, ",")...)
	if p := os.Getenv("HOLDOVER_CASSANDRA_PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("HOLDOVER_CASSANDRA_PORT=%q is not a port", p)
		}
		c.Port = n
	}
	if u := os.Getenv("HOLDOVER_USERNAME"); u != "" {
		c.Authenticator = gocql.PasswordAuthenticator{Username: u, Password: os.Getenv("HOLDOVER_PASSWORD")}
	}
	c.ProtoVersion = 5
	c.Timeout = 60 * time.Second // schema changes are slow on a small node
	c.ConnectTimeout = 10 * time.Second
	c.Logger = gocql.NewLogger(gocql.LogLevelNone)
	return c.CreateSession()
}
