package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/inspect"
	"github.com/holdover/holdover/internal/testbench/loadgen"
	"github.com/holdover/holdover/internal/testbench/soak"
)

// soakOptions are the flags of "holdover-load soak".
type soakOptions struct {
	NodeBin         string
	Nodes           int
	Listen          string
	Seed            uint64
	Duration        time.Duration
	Sessions        int
	Rate            float64
	Faults          string
	FlushDelay      time.Duration
	LeaseTTL        time.Duration
	WindowAllowance time.Duration
	StallRecovery   time.Duration
	Keyspace        string
	KeepKeyspace    bool
	Out             string
	CassandraPID    int
	CassandraScript string
	ReadyTimeout    time.Duration
	Check           string
	Verbose         bool
}

func soakCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o soakOptions
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.NodeBin, "node-bin", "", "`path` of the holdover-node binary (required; make soak builds bin/holdover-node)")
	fs.IntVar(&o.Nodes, "nodes", 3, "reference nodes to run (2..9)")
	fs.StringVar(&o.Listen, "listen", "", "listen addresses of the nodes, comma-separated (default 127.0.0.1:18191, :18192, ...)")
	fs.Uint64Var(&o.Seed, "seed", 0, "seed of the fault plan and the operations (0: from the time; printed)")
	fs.DurationVar(&o.Duration, "duration", 2*time.Minute, "how long load and faults run")
	fs.IntVar(&o.Sessions, "sessions", 200, "session IDs under load")
	fs.Float64Var(&o.Rate, "rate", 150, "operations per second over all sessions")
	fs.StringVar(&o.Faults, "faults", strings.Join(soak.EpisodeKinds, ","), "fault kinds to plan, comma-separated")
	fs.DurationVar(&o.FlushDelay, "flush-delay", 100*time.Millisecond, "HOLDOVER_FLUSH_DELAY of the nodes")
	fs.DurationVar(&o.LeaseTTL, "lease-ttl", 3*time.Second, "HOLDOVER_LEASE_TTL of the nodes")
	fs.DurationVar(&o.WindowAllowance, "window-allowance", 250*time.Millisecond, "flush latency allowed on top of the flush delay (the durability window is their sum)")
	fs.DurationVar(&o.StallRecovery, "stall-recovery", 6*time.Second, "how long after a Cassandra stall the window stays suspended")
	fs.StringVar(&o.Keyspace, "keyspace", "", "keyspace (default holdover_soak_<unix time>, created by the nodes, dropped at the end)")
	fs.BoolVar(&o.KeepKeyspace, "keep-keyspace", false, "do not drop the keyspace at the end")
	fs.StringVar(&o.Out, "out", "e2e/out", "`directory` for soak-history.jsonl, soak.json and soak-logs/")
	fs.IntVar(&o.CassandraPID, "cassandra-pid", 0, "pid of the Cassandra JVM to stall (0: ask -cassandra-script status for the node at HOLDOVER_CASSANDRA_HOSTS)")
	fs.StringVar(&o.CassandraScript, "cassandra-script", "internal/devtools/cassandra/cassandra.sh", "the script that started Cassandra")
	fs.DurationVar(&o.ReadyTimeout, "ready-timeout", 90*time.Second, "how long a node may take to become ready")
	fs.StringVar(&o.Check, "check", "", "only check this history `file` (soak-history.jsonl) and print the report")
	fs.BoolVar(&o.Verbose, "v", false, "copy the nodes' logs to stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "holdover-load soak: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if o.Check != "" {
		return checkOnly(o.Check, stdout, stderr)
	}
	if o.NodeBin == "" {
		fmt.Fprintln(stderr, "holdover-load soak: -node-bin is required")
		return 2
	}
	if o.Nodes < 2 || o.Nodes > 9 {
		fmt.Fprintln(stderr, "holdover-load soak: -nodes must be 2..9")
		return 2
	}
	sum, err := runSoak(ctx, o, stdout, stderr)
	if sum != nil {
		if werr := writeJSON(filepath.Join(o.Out, "soak.json"), sum); werr != nil {
			fmt.Fprintf(stdout, "soak: %v\n", werr)
		}
		printSummary(stdout, sum)
	}
	switch {
	case err != nil:
		fmt.Fprintf(stdout, "soak: FAILED: the soak could not run: %v\n", err)
		return 1
	case !sum.OK():
		fmt.Fprintf(stdout, "soak: FAILED: violations found (seed %d; replay: make soak SEED=%d DURATION=%v)\n", sum.Seed, sum.Seed, o.Duration)
		return 1
	}
	fmt.Fprintf(stdout, "soak: PASSED (seed %d)\n", sum.Seed)
	return 0
}

// runSoak starts the nodes on a fresh keyspace, runs the soak, and always
// leaves Cassandra running and the nodes dead.
func runSoak(ctx context.Context, o soakOptions, stdout, stderr io.Writer) (sum *soak.Summary, err error) {
	logf := func(format string, args ...any) { fmt.Fprintf(stdout, "soak: "+format+"\n", args...) }
	if st, err := os.Stat(o.NodeBin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("-node-bin %q is not an executable file", o.NodeBin)
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano()) & (1<<53 - 1) // exact in JSON
	}
	logf("seed %d (replay: make soak SEED=%d DURATION=%v)", o.Seed, o.Seed, o.Duration)
	listen := strings.Split(o.Listen, ",")
	if o.Listen == "" {
		listen = nil
		for i := range o.Nodes {
			listen = append(listen, fmt.Sprintf("127.0.0.1:%d", 18191+i))
		}
	}
	if len(listen) != o.Nodes {
		return nil, fmt.Errorf("-listen names %d addresses for %d nodes", len(listen), o.Nodes)
	}
	for _, l := range listen {
		if !strings.HasPrefix(l, "127.") {
			return nil, fmt.Errorf("-listen %s: the soak's nodes listen on loopback (127.0.0.x) only", l)
		}
		if err := portFree(l); err != nil {
			return nil, err
		}
	}
	ks := o.Keyspace
	if ks == "" {
		ks = fmt.Sprintf("holdover_soak_%d", time.Now().Unix())
	}
	if !keyspaceRE.MatchString(ks) {
		return nil, fmt.Errorf("-keyspace %q is not a CQL identifier of at most 48 characters", ks)
	}
	var kinds []string
	for _, k := range strings.Split(o.Faults, ",") {
		if k = strings.TrimSpace(k); k != "" {
			kinds = append(kinds, k)
		}
	}
	hosts := os.Getenv("HOLDOVER_CASSANDRA_HOSTS")
	if hosts == "" {
		hosts = "127.0.0.1"
	}
	logDir := filepath.Join(o.Out, "soak-logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}

	cl := &soakCluster{bin: o.NodeBin, ready: o.ReadyTimeout, logDir: logDir, env: map[string][]string{},
		addr: map[string]string{}, alt: map[string]string{}, procs: map[string]*nodeProc{}, logs: map[string]*os.File{}, logf: logf}
	if o.Verbose {
		cl.echo = stderr
	}
	defer cl.close()
	for _, k := range kinds {
		if k == soak.EpStall {
			pid := o.CassandraPID
			if pid == 0 {
				if pid, err = findCassandra(o.CassandraScript, strings.Split(hosts, ",")[0], os.Getenv("HOLDOVER_CASSANDRA_PORT")); err != nil {
					return nil, fmt.Errorf("cannot stall Cassandra (fault kind %q): %v; pass -cassandra-pid or leave %q out of -faults", soak.EpStall, err, soak.EpStall)
				}
			}
			if err := isCassandra(pid); err != nil {
				return nil, err
			}
			cl.cassPID = pid
			logf("Cassandra at %s is pid %d: stalls send it SIGSTOP and SIGCONT (a detached watchdog continues it if this process dies)", hosts, pid)
		}
		if k == soak.EpPartition {
			port := os.Getenv("HOLDOVER_CASSANDRA_PORT")
			if port == "" {
				port = "9042"
			}
			if cl.part, err = newPartitioner(port); err != nil {
				return nil, fmt.Errorf("cannot cut nodes off from Cassandra (fault kind %q): %v; leave %q out of -faults", soak.EpPartition, err, soak.EpPartition)
			}
			logf("partitions: each node runs in a cgroup of its own; a partition drops its packets to port %s (iptables), healing deletes the rule", port)
		}
	}

	var nodes []soak.NodeInfo
	for i, l := range listen {
		name := fmt.Sprintf("n%d", i+1)
		id := "soak-" + name
		nodes = append(nodes, soak.NodeInfo{Name: name, ID: id, URL: "http://" + l})
		cl.addr[name] = l
		if slices.Contains(kinds, soak.EpReplace) {
			// A replacement process starts on the other address while the
			// old one, stopped, still holds this one.
			host, port, _ := strings.Cut(l, ":")
			p, err := strconv.Atoi(port)
			if err != nil {
				return nil, fmt.Errorf("-listen %s: no port", l)
			}
			cl.alt[name] = fmt.Sprintf("%s:%d", host, p+100)
			if err := portFree(cl.alt[name]); err != nil {
				return nil, fmt.Errorf("%v (the replacement address of node %s; leave %q out of -faults to do without)", err, name, soak.EpReplace)
			}
		}
		cl.env[name] = []string{
			"HOLDOVER_NODE_ID=" + id,
			"HOLDOVER_KEYSPACE=" + ks,
			"HOLDOVER_CASSANDRA_HOSTS=" + hosts,
			"HOLDOVER_FLUSH_DELAY=" + o.FlushDelay.String(),
			// The nodes refuse (503) what they could not write within the
			// window the checker holds them to.
			"HOLDOVER_MAX_WINDOW=" + (o.FlushDelay + o.WindowAllowance).String(),
			"HOLDOVER_LEASE_TTL=" + o.LeaseTTL.String(),
			"HOLDOVER_LOG_LEVEL=info",
			// The last node takes over a dead peer's sessions the moment its
			// lease expires, once asked for one of them: its takeovers race
			// the redirects to the other nodes.
			"HOLDOVER_NODE_TAKEOVER_ON_EXPIRY=" + strconv.FormatBool(i == len(listen)-1),
		}
	}
	keyspaceUsed := false
	defer func() {
		cl.killAll()
		if keyspaceUsed && !o.KeepKeyspace {
			if derr := dropKeyspace(hosts, ks); derr != nil {
				logf("could not drop keyspace %s: %v", ks, derr)
			} else {
				logf("dropped keyspace %s", ks)
			}
		} else if keyspaceUsed {
			logf("kept keyspace %s", ks)
		}
	}()
	logf("keyspace %s on Cassandra at %s; %d nodes, flush delay %v, lease TTL %v; logs in %s", ks, hosts, o.Nodes, o.FlushDelay, o.LeaseTTL, logDir)
	for _, n := range nodes { // one after the other: the first creates the schema
		keyspaceUsed = true
		t0 := time.Now()
		if err := cl.Start(ctx, n.Name); err != nil {
			return nil, err
		}
		logf("node %s (%s) ready on %s in %.1fs", n.Name, n.ID, n.URL, time.Since(t0).Seconds())
	}

	acfg, err := adapter.ConfigFromEnv()
	if err != nil {
		return nil, fmt.Errorf("configuration for reading Cassandra: %w", err)
	}
	acfg.Hosts, acfg.Keyspace = strings.Split(hosts, ","), ks
	var (
		inspMu sync.Mutex
		insp   *inspect.Inspector
	)
	defer func() {
		if insp != nil {
			insp.Close()
		}
	}()
	final := func(ctx context.Context, id string) (soak.Observed, error) {
		inspMu.Lock()
		defer inspMu.Unlock()
		if insp == nil {
			i, err := inspect.Open(ctx, acfg)
			if err != nil {
				return soak.Observed{}, err
			}
			insp = i
		}
		info, err := insp.Session(ctx, id)
		if errors.Is(err, inspect.ErrNotFound) {
			return soak.Observed{}, nil
		}
		if err != nil {
			return soak.Observed{}, err
		}
		items := make([]soak.Item, len(info.Items))
		for k, it := range info.Items {
			items[k] = soak.Item{Key: it.Key, Value: it.Value}
		}
		obs, derr := soak.DecodeItems(items)
		if derr != nil {
			obs.Found, obs.Problem = true, derr.Error()
			for _, it := range info.Items {
				obs.Raw = append(obs.Raw, fmt.Sprintf("%s=%q", it.Key, it.Value))
			}
		}
		if info.Owner != nil {
			obs.Owner, obs.Epoch, obs.Ended = info.Owner.Node, info.Owner.Epoch, info.Owner.Ended
		}
		return obs, nil
	}

	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	s, err := soak.Run(ctx, soak.Config{
		Seed: o.Seed, Duration: o.Duration, Sessions: o.Sessions, Rate: o.Rate, Nodes: nodes, Keyspace: ks,
		Kinds: kinds, FlushDelay: o.FlushDelay, WindowAllowance: o.WindowAllowance, StallRecovery: o.StallRecovery,
		LeaseTTL: o.LeaseTTL, HistoryPath: filepath.Join(o.Out, "soak-history.jsonl"), Progress: stdout, Final: final,
	}, cl)
	return &s, err
}

// printSummary prints the soak's result.
func printSummary(w io.Writer, s *soak.Summary) {
	fmt.Fprintf(w, "soak: seed=%d duration_s=%.0f plan_digest=%s sessions=%d window_ms=%d\n", s.Seed, s.DurationS, s.PlanDigest, s.Sessions, s.WindowMS)
	fmt.Fprintf(w, "soak: operations %s\n", loadgen.FormatCounts(s.Operations))
	fmt.Fprintf(w, "soak: outcomes %s\n", loadgen.FormatCounts(s.Outcomes))
	fmt.Fprintf(w, "soak: faults %s (steps %s)\n", loadgen.FormatCounts(s.Faults), loadgen.FormatCounts(s.FaultSteps))
	c := s.Check
	fmt.Fprintf(w, "soak: checked observations=%d restores=%d final=%d lost_within_window=%d max_lost_age_ms=%.0f probe_acks=%d implicit_adoptions=%d unplaced=%d\n",
		c.Observations, c.Restores, c.FinalChecked, c.LostWithinWindow, c.MaxLostAgeMS, c.ProbeAcks, c.ImplicitAdoptions, c.Unplaced)
	fmt.Fprintf(w, "soak: violations I1=%d I2=%d I3=%d I4=%d %s\n", s.Violations[soak.I1], s.Violations[soak.I2],
		s.Violations[soak.I3], s.Violations[soak.I4], loadgen.FormatCounts(c.ByKind))
	for _, e := range s.Examples {
		fmt.Fprintf(w, "soak: %s %s session %s (seed %d, ops %v): %s\n", e.Invariant, e.Kind, e.Session, e.Seed, e.Ops, e.What)
	}
	fmt.Fprintf(w, "soak: history %s\n", s.History)
}

// checkOnly checks a saved history.
func checkOnly(path string, stdout, stderr io.Writer) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "holdover-load soak: %v\n", err)
		return 1
	}
	defer f.Close()
	rep, err := soak.CheckHistory(f)
	if err != nil {
		fmt.Fprintf(stderr, "holdover-load soak: %v\n", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
	if !rep.OK() {
		return 1
	}
	return 0
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
