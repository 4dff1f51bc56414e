// Command holdover-load drives session load against holdover reference nodes
// (cmd/holdover-node), fails one of them, redirects its sessions to the
// survivors and checks that nothing acknowledged outside the durability
// window was lost (internal/testbench/loadgen does the work).
//
//	holdover-load run  -nodes A=http://127.0.0.1:18081,B=http://127.0.0.1:18082 \
//	                   [-sessions 200] [-rate 300] [-duration 30s] \
//	                   [-fail A -fail-after 10s -fail-cmd 'kill -9 1234'] [-window-allowance 250ms]
//	holdover-load demo -node-bin bin/holdover-node
//	holdover-load soak -node-bin bin/holdover-node [-duration 2m] [-seed N] [-out e2e/out]
//	holdover-load soak -check e2e/out/soak-history.jsonl
//	holdover-load overload -node-bin bin/holdover-node [-out bench/out/failover.json]
//
// run drives nodes that are already running; with -fail it runs -fail-cmd
// (through sh -c, with HOLDOVER_FAIL_NODE and HOLDOVER_FAIL_URL set) at the
// failure moment and then redirects that node's sessions. demo does the whole
// failover demonstration by itself: a fresh keyspace, two nodes started as
// child processes, load, SIGKILL of one node, adoption of its sessions by the
// other, verification, shutdown, and the keyspace dropped. Both print progress
// about once a second. soak runs three nodes under a seeded schedule of
// faults (SIGKILL, SIGSTOP, SIGKILL during a drain, restarts, Cassandra
// stalls), writes a history of every operation and fault, and checks it for
// violations of the four invariants (internal/testbench/soak); -check checks a saved
// history again. overload runs the creation-burst scenario as two demos
// (3,000 new sessions at 1,500 events/s; A gets SIGTERM and SIGKILL 120 ms
// into its drain, then, in the second run, SIGKILL alone) and writes the
// figures make bench reports: losses beyond the window, refusals, false
// self-fences and the failover time.
//
// Exit status: 0 when nothing was lost beyond the window, nothing was corrupt
// and every session was accounted for; 1 otherwise or on an error; 2 on bad
// usage.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage:
  holdover-load run  -nodes name=url,... [flags]   drive load against running nodes
  holdover-load demo -node-bin PATH [flags]        start two nodes, SIGKILL one, prove nothing is lost
  holdover-load soak -node-bin PATH [flags]        nemesis soak of three nodes with a history checker
  holdover-load overload -node-bin PATH [flags]    a burst of new sessions; A fails during it (make bench)
Run "holdover-load run -h", "holdover-load demo -h" or "holdover-load soak -h" for the flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runCmd(ctx, args[1:], stdout, stderr)
	case "demo":
		return demoCmd(ctx, args[1:], stdout, stderr)
	case "soak":
		return soakCmd(ctx, args[1:], stdout, stderr)
	case "overload":
		return overloadCmd(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "holdover-load: unknown command %q\n%s", args[0], usage)
	return 2
}
