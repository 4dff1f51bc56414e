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
	"strings"
	"time"

	"github.com/holdover/holdover/internal/testbench/harness"
)

// overloadCmd runs the failover and overload scenarios make bench reports,
// as demos on two reference nodes:
//
//   - burst: many new sessions at once, A failed during the burst by SIGTERM
//     then SIGKILL into its drain, then by SIGKILL alone (nothing
//     acknowledged may be lost beyond the window, no node may fence itself);
//   - steady: the failover time at 80% of the saturation load, which a
//     probe measures first in the same run (a load well above what the nodes
//     sustain; its rate before A's failure is the saturation load), then a
//     run at that share of it, A SIGKILLed at its end.
//
// It writes the figures of all of them (harness.Failover's keys).
func overloadCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		o          demoOptions
		out        string
		phases     string
		steadyFor  time.Duration
		probeRate  float64
		steadyPart float64
		steadyRate float64
	)
	fs := flag.NewFlagSet("overload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.NodeBin, "node-bin", "", "`path` of the holdover-node binary (required)")
	fs.StringVar(&out, "out", "bench/out/failover.json", "where to write the figures (JSON)")
	fs.StringVar(&phases, "phases", "burst,steady", "scenarios to run: burst, steady, or both")
	fs.DurationVar(&steadyFor, "steady-for", 20*time.Second, "steady: load before A is SIGKILLed")
	fs.Float64Var(&probeRate, "probe-rate", 4000, "steady: events per second the saturation probe offers")
	fs.Float64Var(&steadyPart, "steady-share", 0.8, "steady: share of the saturation load offered")
	fs.BoolVar(&o.Verbose, "v", false, "copy the nodes' logs to stderr")
	fs.Float64Var(&steadyRate, "steady-rate", 0, "steady: events per second offered instead of the share of the probe's (0: the share); for long runs, 80% of a rate sustained that long")
	demoFlags(fs, &o, demoOptions{Sessions: 3000, Rate: 1500, Warmup: 4 * time.Second, Continue: 3 * time.Second,
		LeaseTTL: 2 * time.Second, KillAfter: 120 * time.Millisecond, Parallelism: 256, TakeoverOnExpiry: true,
		AdoptWait: 2500 * time.Millisecond, MaxHistory: 64})
	if err := fs.Parse(args); err != nil {
		return 2
	}
	run := strings.Split(phases, ",")
	bad := slices.ContainsFunc(run, func(p string) bool { return p != "burst" && p != "steady" })
	switch {
	case o.NodeBin == "" || fs.NArg() > 0:
		fmt.Fprintln(stderr, "holdover-load overload: -node-bin is required and no arguments are taken")
		return 2
	case bad:
		fmt.Fprintf(stderr, "holdover-load overload: -phases %q: want burst, steady or burst,steady\n", phases)
		return 2
	case steadyPart <= 0 || steadyPart > 1:
		fmt.Fprintf(stderr, "holdover-load overload: -steady-share %g: want a share above 0 and at most 1\n", steadyPart)
		return 2
	}
	// A previous run's figures must not outlive a run that fails before
	// writing its own: make bench reads the file whatever this run's status.
	if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stderr, "holdover-load overload: -out %s: %v\n", out, err)
		return 1
	}
	var (
		fig           harness.Failover
		lost, refused int
		fences        int
		ok            = true
	)
	ttl := float64(o.LeaseTTL.Milliseconds())
	fig.LeaseTTLMS = &ttl
	// demo runs one scenario and adds what it lost, refused and fenced.
	demo := func(name string, run demoOptions) (demoResult, bool) {
		run.Keyspace = fmt.Sprintf("holdover_overload_%d", time.Now().UnixNano())
		fmt.Fprintf(stdout, "overload: %s: %s of A, %d sessions at %.0f events/s\n", name, run.Fail, run.Sessions, run.Rate)
		res, err := runDemo(ctx, run, stdout, stderr)
		if err != nil {
			fmt.Fprintf(stdout, "overload: %s: FAILED: %v\n", name, err)
			return res, false
		}
		fmt.Fprintf(stdout, "overload: %s: report: %v\n", name, res.Report)
		fmt.Fprintln(stdout, "overload: "+name+": "+demoLine(res))
		if !res.OK() {
			fmt.Fprintf(stdout, "overload: %s: FAILED: %s\n", name, res.verdict())
			ok = false
		}
		lost += int(res.Report.LostBeyondWindow)
		refused += int(res.Report.Errors["http_503"])
		fences += res.FalseFences
		return res, true
	}
	if slices.Contains(run, "burst") {
		for _, fail := range []string{"term-kill", "kill"} {
			r := o
			r.Fail = fail
			if _, done := demo("burst "+fail, r); !done {
				return 1
			}
		}
	}
	if slices.Contains(run, "steady") {
		// Fewer sessions than the burst, each busier: the load is events,
		// not creations.
		r := o
		r.Fail, r.Sessions, r.Rate, r.Warmup, r.Continue = "kill", 400, probeRate, 10*time.Second, 2*time.Second
		probe, done := demo("saturation probe", r)
		if !done {
			return 1
		}
		sat := probe.Report.EventsPerSecBeforeFailure
		steady := steadyPart * sat
		if steadyRate > 0 {
			steady = steadyRate
		}
		fmt.Fprintf(stdout, "overload: saturation %.0f events/s (offered %.0f); steady run at %.0f%% of it: %.0f events/s for %v\n",
			sat, probeRate, 100*steady/sat, steady, steadyFor)
		r.Rate, r.Warmup, r.Continue = steady, steadyFor, 4*time.Second
		res, done := demo("steady", r)
		if !done {
			return 1
		}
		rep := res.Report
		achieved := rep.EventsPerSecBeforeFailure
		fig.SaturationEventsPerS, fig.SteadyEventsPerS = &sat, &achieved
		fig.FailoverP50MS, fig.FailoverP99MS, fig.FailoverMaxMS = &rep.FailoverP50Ms, &rep.FailoverP99Ms, &rep.FailoverMaxMs
		floor := float64(res.LeaseFloor.Milliseconds())
		if res.LeaseFloor <= 0 { // A's lease could not be read: its latest end
			floor = ttl
			fmt.Fprintf(stdout, "overload: steady: A's lease end unknown: the floor is taken as the TTL, %.0f ms\n", floor)
		}
		fig.FailoverFloorMS = &floor
		fmt.Fprintf(stdout, "overload: steady: failover p50/p99/max %.0f / %.0f / %.0f ms; A's lease ended %.0f ms after its kill; goal p99 <= TTL + 300 = %.0f ms\n",
			rep.FailoverP50Ms, rep.FailoverP99Ms, rep.FailoverMaxMs, floor, ttl+300)
	}
	fig.OverloadLostBeyondWindow, fig.OverloadRefusals, fig.FalseFences = &lost, &refused, &fences
	b, _ := json.MarshalIndent(fig, "", "  ")
	err := os.MkdirAll(filepath.Dir(out), 0o755)
	if err == nil {
		err = os.WriteFile(out, append(b, '\n'), 0o644)
	}
	if err != nil {
		fmt.Fprintf(stdout, "overload: FAILED: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "overload: figures in %s: %s\n", out, b)
	if !ok {
		return 1
	}
	return 0
}
