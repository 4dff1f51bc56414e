package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/holdover/holdover/internal/testbench/loadgen"
)

// runCmd is "holdover-load run".
func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodes := fs.String("nodes", "", "nodes under load, `name=url,...` (e.g. A=http://127.0.0.1:18081,B=http://127.0.0.1:18082)")
	sessions := fs.Int("sessions", 200, "concurrent sessions, assigned to the nodes round robin")
	rate := fs.Float64("rate", 300, "events per second over all sessions")
	duration := fs.Duration("duration", 30*time.Second, "how long events are sent (longer with -fail: see -continue-for)")
	failNode := fs.String("fail", "", "`name` of the node to fail")
	failAfter := fs.Duration("fail-after", 10*time.Second, "when to fail it, after the start")
	failCmd := fs.String("fail-cmd", "", "shell command that fails the node (sh -c; HOLDOVER_FAIL_NODE and HOLDOVER_FAIL_URL are set)")
	continueFor := fs.Duration("continue-for", 3*time.Second, "load continues at least this long after the redirect")
	allowance := fs.Duration("window-allowance", 250*time.Millisecond, "flush latency allowed on top of the failed node's flush delay")
	adoptTimeout := fs.Duration("adopt-timeout", 20*time.Second, "how long after the failure adoption is retried (set above the lease TTL)")
	appendRatio := fs.Float64("append-ratio", 0.5, "share of appends among update/append events")
	seed := fs.Int64("seed", 0, "seed of the event mix (0: time)")
	jsonOut := fs.Bool("json", false, "print the final report as JSON on stdout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "holdover-load run: unexpected arguments %q\n", fs.Args())
		return 2
	}
	ns, err := parseNodes(*nodes)
	if err != nil {
		fmt.Fprintf(stderr, "holdover-load run: -nodes: %v\n", err)
		return 2
	}
	cfg := loadgen.Config{
		Nodes: ns, Sessions: *sessions, Rate: *rate, Duration: *duration,
		AppendRatio: *appendRatio, WindowAllowance: *allowance, AdoptTimeout: *adoptTimeout,
		Seed: *seed, Progress: stderr,
	}
	if *failNode != "" {
		if *failCmd == "" {
			fmt.Fprintln(stderr, "holdover-load run: -fail needs -fail-cmd (the command that fails the node)")
			return 2
		}
		cfg.Failure = &loadgen.Failure{Node: *failNode, After: *failAfter, ContinueFor: *continueFor,
			Fail: shellFail(*failCmd, stderr)}
	}
	g, err := loadgen.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "holdover-load run: %v\n", err)
		return 2
	}
	rep, err := g.Run(ctx)
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		fmt.Fprintf(stdout, "report: %v\n", rep)
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "holdover-load run: %v\n", err)
		return 1
	case !rep.OK():
		fmt.Fprintf(stderr, "holdover-load run: FAILED: %s\n", verdict(rep))
		return 1
	}
	return 0
}

// parseNodes parses "A=http://h:p,B=http://h:p".
func parseNodes(s string) ([]loadgen.Node, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("required, as name=url[,name=url]")
	}
	var out []loadgen.Node
	for _, part := range strings.Split(s, ",") {
		name, u, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("%q is not name=url", part)
		}
		out = append(out, loadgen.Node{Name: name, URL: u})
	}
	return out, nil
}

// shellFail returns a Failure.Fail that runs cmd with sh -c.
func shellFail(cmd string, stderr io.Writer) func(context.Context, loadgen.Node) error {
	return func(ctx context.Context, n loadgen.Node) error {
		c := exec.CommandContext(ctx, "sh", "-c", cmd)
		c.Env = append(os.Environ(), "HOLDOVER_FAIL_NODE="+n.Name, "HOLDOVER_FAIL_URL="+n.URL)
		c.Stdout, c.Stderr = stderr, stderr
		if err := c.Run(); err != nil {
			return fmt.Errorf("-fail-cmd %q: %w", cmd, err)
		}
		return nil
	}
}

// verdict says why a report is not OK.
func verdict(r loadgen.Report) string {
	var why []string
	if r.LostBeyondWindow > 0 {
		why = append(why, fmt.Sprintf("%d acknowledged events lost beyond the window", r.LostBeyondWindow))
	}
	if r.Corrupt > 0 {
		why = append(why, fmt.Sprintf("%d sessions restored with a state they never had", r.Corrupt))
	}
	if r.Unrestored > 0 {
		why = append(why, fmt.Sprintf("%d redirected sessions not restored", r.Unrestored))
	}
	if r.FinalMismatch > 0 {
		why = append(why, fmt.Sprintf("%d sessions differed from the model at the end", r.FinalMismatch))
	}
	if len(why) == 0 {
		return "ok"
	}
	return strings.Join(why, "; ")
}
