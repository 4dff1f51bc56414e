// Command holdover-bench measures holdover beside its anchors against a
// running Cassandra and writes bench/out/results.json and a table.
//
//	holdover-bench -gobench bench/out/buffer.txt -out bench/out/results.json
//
// -gobench is the output of the buffer's `go test -bench` run (make bench
// produces it); -failover names the figures of a separate failover run, a
// JSON object copied into the results. Cassandra is found through
// HOLDOVER_CASSANDRA_HOSTS (default 127.0.0.1) and HOLDOVER_CASSANDRA_PORT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/holdover/holdover/internal/testbench/harness"
)

func main() {
	gobench := flag.String("gobench", "bench/out/buffer.txt", "go test -bench output of the buffer package")
	out := flag.String("out", "bench/out/results.json", "where to write the results")
	sessions := flag.Int("sessions", 20000, "sessions in the throughput runs")
	passes := flag.Int("passes", 5, "timed passes per throughput figure (the median is kept)")
	adopts := flag.Int("adoptions", 1000, "sessions adopted (and claimed by the floor) in the latency run")
	seconds := flag.Duration("duration", 10*time.Second, "length of the Zipf and window runs")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of this process (the client side) to this file")
	takeovers := flag.Int("takeover-sessions", 10000, "sessions of a dead node taken over (and claimed by the anchor) in the takeover run")
	tkRounds := flag.Int("takeover-rounds", 3, "rounds of the takeover run, each a takeover of -takeover-sessions sessions beside as many bare claims; the figures sum them")
	takeoverConc := flag.Int("takeover-concurrency", 16, "claims in flight during the takeover (its fences run beside them), and claims in flight of its anchor (16: Takeover's default)")
	failover := flag.String("failover", "", "JSON figures of a separate failover run to copy into the results; not measured when empty or absent")
	only := flag.String("only", "", "comma-separated steps to run ("+strings.Join(allSteps, ", ")+"); all when empty")
	rpoCommits := flag.Float64("rpo-rate", 0, "commits per second of the window run; 0: half of flush1's rows/s (or 15000 when flush1 does not run)")
	pids := flag.String("cassandra-pids", "", "pids of the Cassandra nodes on this machine (internal/devtools/cassandra/cassandra.sh pids prints them), space- or comma-separated: the window run is repeated with their CPU priority lowered (nice 10), this process then scheduled ahead of them as on its own cores; the first run's figures go under window_shared")
	stress := flag.String("stress", "", "cassandra-stress launcher (internal/devtools/cassandra/cassandra.sh fetch-stress prints it); the stress step is skipped without it")
	flag.Parse()
	steps, err := parseSteps(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "holdover-bench:", err)
		os.Exit(2)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "holdover-bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *stress == "" {
		delete(steps, "stress")
	}
	stressBin = *stress
	if cassandraPids, err = parsePids(*pids); err != nil {
		fmt.Fprintln(os.Stderr, "holdover-bench:", err)
		os.Exit(2)
	}
	err = checkSizes([]size{
		{"-sessions", *sessions, 1}, {"-passes", *passes, 1}, {"-adoptions", *adopts, 1},
		{"-takeover-sessions", *takeovers, 2}, {"-takeover-concurrency", *takeoverConc, 1}, {"-takeover-rounds", *tkRounds, 1},
	})
	if err == nil && *seconds <= 0 {
		err = fmt.Errorf("-duration %s: want more than 0", *seconds)
	}
	if err == nil && *rpoCommits < 0 {
		err = fmt.Errorf("-rpo-rate %g: want 0 (half of flush1's rate) or more", *rpoCommits)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "holdover-bench:", err)
		os.Exit(2)
	}
	takeoverSessions, takeoverConcurrency, takeoverRounds, failoverPath, rpoRate = *takeovers, *takeoverConc, *tkRounds, *failover, *rpoCommits
	if err := run(steps, *gobench, *out, *sessions, *passes, *adopts, *seconds); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "holdover-bench:", err)
		os.Exit(1)
	}
}

// size is a count flag, its value and the least it may be.
type size struct {
	flag         string
	value, least int
}

// checkSizes refuses the first count flag below its least, naming both: a
// run would otherwise fail only when its step came, minutes in.
func checkSizes(sizes []size) error {
	for _, s := range sizes {
		if s.value < s.least {
			return fmt.Errorf("%s %d: want at least %d", s.flag, s.value, s.least)
		}
	}
	return nil
}

// The flush concurrencies the adapter is measured at, and the goroutine counts
// of the raw gocql writer: the same ladder, so each side's best is its own.
var (
	flushConcurrency = []int{256, 512, 1024}
	rawGoroutines    = []int{256, 512, 1024}
)

// stressBin is the cassandra-stress launcher (-stress).
var stressBin string

// The takeover run's size, concurrency and rounds (-takeover-sessions,
// -takeover-concurrency, -takeover-rounds), the failover run's figures (-failover), and the
// window run's commit rate (-rpo-rate, 0 for half of flush1's).
var (
	takeoverSessions, takeoverConcurrency, takeoverRounds int
	failoverPath                                          string
	rpoRate                                               float64
	cassandraPids                                         []int
)

// windowNice is the nice the Cassandra nodes run at during the second window run.
const windowNice = 10

// parsePids reads -cassandra-pids.
func parsePids(s string) ([]int, error) {
	var pids []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("-cassandra-pids: %q is not a process id", f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// takeoverRate is the takeover's rate limit: HOLDOVER_ADOPT_RATE's upper
// bound, so that the run measures how fast a takeover goes, not the limiter
// (the default, 500 sessions/s, would cap it).
const takeoverRate = 1e6

// rpoFallbackRate is the commit rate of the window run when -only skips the
// saturation run it is normally half of.
const rpoFallbackRate = 15000

// allSteps are the benchmark's steps, in the order they run.
var allSteps = []string{"flush1", "flush8", "stress", "zipf", "adopt", "ownership", "takeover", "rpo"}

// parseSteps turns -only into the set of steps to run.
func parseSteps(only string) (map[string]bool, error) {
	steps := map[string]bool{}
	if only == "" {
		for _, s := range allSteps {
			steps[s] = true
		}
		return steps, nil
	}
	for _, s := range strings.Split(only, ",") {
		if !slices.Contains(allSteps, s) {
			return nil, fmt.Errorf("-only: unknown step %q (steps: %s)", s, strings.Join(allSteps, ", "))
		}
		steps[s] = true
	}
	return steps, nil
}

func run(steps map[string]bool, gobench, out string, sessions, passes, adopts int, d time.Duration) error {
	ctx := context.Background()
	r := &harness.Results{Machine: harness.Machine(), Date: time.Now().UTC().Format(time.RFC3339)}

	if gobench != "" { // empty: -only runs that skip the buffer's Go benchmarks
		if err := readGoBench(r, gobench); err != nil {
			return err
		}
	}
	if err := r.LoadFailover(failoverPath); err != nil {
		return err
	}

	hosts := strings.Split(envOr("HOLDOVER_CASSANDRA_HOSTS", "127.0.0.1"), ",")
	port, err := strconv.Atoi(envOr("HOLDOVER_CASSANDRA_PORT", "9042"))
	if err != nil {
		return fmt.Errorf("HOLDOVER_CASSANDRA_PORT: %w", err)
	}
	e := &harness.Env{Hosts: hosts, Port: port, Keyspace: fmt.Sprintf("bench_%d", time.Now().Unix()), Log: os.Stdout}
	if err := e.Setup(ctx); err != nil {
		return fmt.Errorf("set up keyspace %s: %w", e.Keyspace, err)
	}
	defer e.Teardown(context.Background())
	r.CassandraVersion = e.ReleaseVersion()

	step := func(name string) func() {
		fmt.Printf("bench: %s ...\n", name)
		began := time.Now()
		return func() { fmt.Printf("bench: %s done in %s\n", name, time.Since(began).Round(time.Millisecond)) }
	}

	if steps["flush1"] {
		done := step("flush throughput, 1 item per session")
		if r.FlushRowsPerS, r.RawGocqlRowsPerS, err = e.FlushCompare(ctx, "one", sessions, 1, passes, flushConcurrency, rawGoroutines); err != nil {
			return err
		}
		done()
	}
	if steps["flush8"] {
		done := step("flush throughput, 8 items per session")
		if r.FlushMultiRowsPerS, r.RawGocqlMultiRowsPerS, err = e.FlushCompare(ctx, "multi", sessions/8, 8, passes, flushConcurrency, rawGoroutines); err != nil {
			return err
		}
		done()
	}
	if steps["stress"] {
		done := step("cassandra-stress write, for reference")
		v, err := e.Stress(ctx, stressBin, 300000, 256)
		if err != nil {
			return err
		}
		r.StressRowsPerS = &v
		r.Notes = append(r.Notes, "stress_rows_per_s: cassandra-stress from the apache-cassandra 4.0-alpha2 binary tarball (the newest on Maven Central; none for 5.0.x), native protocol v4, 256 threads, its own table of five 34-byte columns, against the same node")
		done()
	} else {
		r.Notes = append(r.Notes, "stress_rows_per_s: not measured (run with -stress, as make bench does)")
	}

	if steps["zipf"] {
		done := step("writes issued under a Zipf workload")
		w, err := e.Writes(ctx, 1000, 20000, d)
		if err != nil {
			return err
		}
		r.WritesIssued, r.WritesMinimum, r.ZipfCommits, r.WritesEdgeCommits = w.Issued, w.Minimum, w.Commits, w.Edge
		done()
	}
	if steps["adopt"] {
		done := step("adoption latency")
		ad, err := e.Adopt(ctx, adopts)
		if err != nil {
			return err
		}
		r.AdoptP50MS, r.AdoptP99MS, r.FloorP50MS, r.FloorP99MS = ad.OursP50, ad.OursP99, ad.FloorP50, ad.FloorP99
		r.FloorFenceP50MS, r.FloorFenceP99MS = ad.FencedP50, ad.FencedP99
		r.AdoptReleasedP50MS, r.AdoptReleasedP99MS = ad.ReleasedP50, ad.ReleasedP99
		done()
	}
	if steps["ownership"] {
		done := step("ownership statements: lightweight transactions beside plain ones")
		ow, err := e.Ownership(ctx, adopts)
		if err != nil {
			return err
		}
		r.CreateOwnerLWTP50MS, r.CreateOwnerLWTP99MS = ow.CreateLWTP50, ow.CreateLWTP99
		r.PlainInsertP50MS, r.PlainInsertP99MS = ow.PlainInsertP50, ow.PlainInsertP99
		r.ClaimP50MS, r.ClaimP99MS, r.PlainReadP50MS, r.PlainReadP99MS = ow.ClaimP50, ow.ClaimP99, ow.PlainReadP50, ow.PlainReadP99
		done()
	}
	if steps["takeover"] {
		done := step("bulk takeover of a dead node's sessions beside bare claims")
		tk, err := e.Takeover(ctx, takeoverSessions, takeoverConcurrency, takeoverRounds, takeoverRate)
		if err != nil {
			return err
		}
		r.TakeoverSessionsPerS, r.RawClaimsPerS = tk.OursPerS, tk.RawPerS
		ratios := make([]string, len(tk.Rounds))
		for i, rd := range tk.Rounds {
			ratios[i] = fmt.Sprintf("%.2fx", rd.Ratio())
		}
		r.Notes = append(r.Notes, fmt.Sprintf("takeover_sessions_per_s: %d rounds of %d sessions (ratios by round %s), %d in flight on both sides, rate limit %.0f/s",
			len(tk.Rounds), tk.Sessions, strings.Join(ratios, ", "), tk.Concurrency, takeoverRate))
		done()
	}
	if steps["rpo"] {
		done := step("data-loss window at half the saturation load")
		rate := rpoRate
		if rate == 0 {
			rate = r.FlushRowsPerS / 2
		}
		if rate == 0 {
			rate = rpoFallbackRate
			fmt.Printf("bench: flush1 did not run; the window is measured at %.0f commits/s\n", rate)
		}
		if err := window(ctx, e, r, rate, d); err != nil {
			return err
		}
		done()
	}

	if err := os.MkdirAll(dirOf(out), 0o755); err != nil {
		return err
	}
	if err := r.Write(out); err != nil {
		return err
	}
	fmt.Println()
	r.Table(os.Stdout)
	fmt.Printf("bench: results in %s\n", out)
	return nil
}

// window runs the window step: at equal priority with Cassandra, then, when
// -cassandra-pids names its nodes, again with their CPU priority lowered.
// The second run's figures are the rpo_* and flush_start_* keys, the first
// run's go under window_shared; without a second run the first's are the keys.
func window(ctx context.Context, e *harness.Env, r *harness.Results, rate float64, d time.Duration) error {
	rp, err := e.RPO(ctx, rate, d)
	if err != nil {
		return err
	}
	r.Window = rp.Window()
	r.WindowPriority = "at equal priority with Cassandra (the cores shared)"
	if len(cassandraPids) == 0 {
		r.Notes = append(r.Notes, "window: measured once, at equal priority with Cassandra (-cassandra-pids not given)")
		return nil
	}
	restore, how, err := harness.Yield(cassandraPids, windowNice)
	if err != nil {
		if rerr := restore(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		fmt.Printf("bench: window measured once, at equal priority: lowering Cassandra's priority failed: %v\n", err)
		r.Notes = append(r.Notes, fmt.Sprintf("window: measured once, at equal priority with Cassandra: lowering its priority failed: %v", err))
		return nil
	}
	fmt.Printf("bench: window again, this process scheduled ahead of Cassandra (%s) ...\n", how)
	ahead, err := e.RPO(ctx, rate, d)
	if rerr := restore(); rerr != nil {
		fmt.Printf("bench: Cassandra keeps its lowered priority until it stops: restoring it: %v\n", rerr)
	}
	if err != nil {
		return err
	}
	shared := rp.Window()
	r.WindowShared, r.Window = &shared, ahead.Window()
	r.WindowPriority = "with this process scheduled ahead of the Cassandra nodes it shares the cores with (" + how + "); window_shared: at equal priority"
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// readGoBench fills the buffer's figures from `go test -bench` output.
func readGoBench(r *harness.Results, gobench string) error {
	f, err := os.Open(gobench)
	if err != nil {
		return err
	}
	g, err := harness.ParseGoBench(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", gobench, err)
	}
	r.CommitUpdateNS = g["BenchmarkCommitUpdate"]["ns/op"]
	r.CommitUpdateAllocs = g["BenchmarkCommitUpdate"]["allocs/op"]
	r.BaselineMapUpdateNS = g["BenchmarkBaselineMapUpdate"]["ns/op"]
	r.CommitFamiliesNS = g["BenchmarkCommitDirtyKeyFamilies/families=3"]["ns/op"]
	r.CommitNoFamiliesNS = g["BenchmarkCommitDirtyKeyFamilies/families=0"]["ns/op"]
	// The overhead benchmark runs per session size; the goal holds for the worst.
	for name, units := range g {
		if strings.HasPrefix(name, "BenchmarkPendingKeyOverhead") {
			if v := units["overhead-B/key"]; v > r.PendingKeyOverheadBytes {
				r.PendingKeyOverheadBytes = v
			}
		}
	}
	return nil
}
