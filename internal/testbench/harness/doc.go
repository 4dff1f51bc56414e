// Package bench measures holdover beside its anchors, in the same run on the
// same Cassandra: the commit path against a mutex-guarded map, flush
// throughput against a tuned plain gocql writer, adoption latency against the
// bare claim-plus-read (and plus the fence), bulk takeover against bare
// claims, writes issued against the minimum possible, and the observed
// data-loss window against its bound. cmd/holdover-bench runs it and
// writes bench/out/results.json.
package harness
