package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// overloadFigures are the figures "holdover-load overload" writes for make
// bench (cmd/holdover-bench -failover reads them; docs/performance.md).
type overloadFigures struct {
	LostBeyondWindow int64   `json:"overload_lost_beyond_window"`
	Refusals         int64   `json:"overload_refusals"`
	FalseFences      int     `json:"false_fences"`
	FailoverP50MS    float64 `json:"failover_p50_ms"`
	FailoverP99MS    float64 `json:"failover_p99_ms"`
	FailoverMaxMS    float64 `json:"failover_max_ms"`
	LeaseTTLMS       float64 `json:"lease_ttl_ms"`
}

// overloadCmd runs the creation-burst scenario twice, as demos: many new
// sessions at once, A failed during the burst by SIGTERM then SIGKILL into
// its drain, then by SIGKILL alone. It writes the figures of both runs.
func overloadCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o demoOptions
	var out string
	fs := flag.NewFlagSet("overload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.NodeBin, "node-bin", "", "`path` of the holdover-node binary (required)")
	fs.StringVar(&out, "out", "bench/out/failover.json", "where to write the figures (JSON)")
	demoFlags(fs, &o, demoOptions{Sessions: 3000, Rate: 1500, Warmup: 4 * time.Second, Continue: 3 * time.Second,
		LeaseTTL: 2 * time.Second, KillAfter: 120 * time.Millisecond, Parallelism: 256})
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.NodeBin == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "holdover-load overload: -node-bin is required and no arguments are taken")
		return 2
	}
	var (
		fig = overloadFigures{LeaseTTLMS: float64(o.LeaseTTL.Milliseconds())}
		ok  = true
	)
	for _, fail := range []string{"term-kill", "kill"} {
		run := o
		run.Fail = fail
		run.Keyspace = fmt.Sprintf("holdover_overload_%d", time.Now().UnixNano())
		fmt.Fprintf(stdout, "overload: %s of A during a burst of %d new sessions at %.0f events/s\n", fail, o.Sessions, o.Rate)
		res, err := runDemo(ctx, run, stdout, stderr)
		if err != nil {
			fmt.Fprintf(stdout, "overload: %s: FAILED: %v\n", fail, err)
			return 1
		}
		fmt.Fprintf(stdout, "overload: %s: report: %v\n", fail, res.Report)
		fmt.Fprintln(stdout, "overload: "+fail+": "+demoLine(res))
		if !res.OK() {
			fmt.Fprintf(stdout, "overload: %s: FAILED: %s\n", fail, res.verdict())
			ok = false
		}
		fig.LostBeyondWindow += res.Report.LostBeyondWindow
		fig.Refusals += res.Report.Errors["http_503"]
		fig.FalseFences += res.FalseFences
		if fail == "kill" { // the crash: every session waits for A's lease
			fig.FailoverP50MS, fig.FailoverP99MS, fig.FailoverMaxMS = res.Report.FailoverP50Ms, res.Report.FailoverP99Ms, res.Report.FailoverMaxMs
		}
	}
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
