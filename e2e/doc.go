// Package e2e holds the failover drills, run in Docker against real Cassandra
// containers and containers of the project's own node (cmd/holdover-node),
// with load from internal/testbench/loadgen.
//
// The drills are Go tests behind the build tag "drills", so `go test ./...`
// compiles this file alone and runs none of them; `make drills` (all seven)
// and `make drills-ci` (crash, zombie, drain; part of `make test`) start a
// Docker engine if needed, build the images and run
//
//	HOLDOVER_DRILLS="crash zombie" go test -tags drills -v ./e2e/
//
// They fail, never skip, when Docker or Cassandra cannot start. See
// README.md beside this file for what each drill proves and the report it
// writes.
package e2e
