// Command holdover-node is holdover's reference session node: a small
// HTTP/JSON session-processing server that keeps its sessions in memory and
// persists them behind its back through the holdover adapter, adopting the
// sessions of nodes that died.
//
// It is configured entirely by environment variables: the adapter's
// HOLDOVER_* variables (see the adapter package and README.md) plus
//
//	HOLDOVER_NODE_LISTEN         HTTP listen address (default 127.0.0.1:8080)
//	HOLDOVER_NODE_DRAIN_TIMEOUT  bound on each shutdown phase (default 10s)
//	HOLDOVER_LOG_FORMAT          text or json (default text)
//	HOLDOVER_LOG_LEVEL           debug, info, warn or error (default info)
//
// An invalid configuration prints every problem to stderr and exits with
// status 2. SIGTERM or SIGINT shuts the node down gracefully: /readyz turns
// 503, requests in flight finish, pending changes are flushed and the
// sessions released so peers adopt them at once; the exit status is then 0.
// The HTTP API is described in docs/node-api.md.
package main

import (
	"context"
	"os"

	"github.com/holdover/holdover/internal/testbench/node"
)

func main() {
	os.Exit(node.Run(context.Background(), os.Stderr))
}
