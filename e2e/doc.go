// Package e2e holds the failover drills, run in Docker against real Cassandra
// containers and containers of the project's own node.
package e2e
