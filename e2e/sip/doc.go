// Package sip holds the sip_failover drill: Kamailio (Debian's kamailio,
// 5.6) in front of three SIP nodes (examples/sipnode), SIPp (Debian's
// sip-tester, 3.6) placing calls with a hold through it, Cassandra behind;
// one node is killed with SIGKILL (variant kill) or drained with SIGTERM
// (variant drain) while calls are up.
//
// The parts run as processes on loopback addresses, not in containers:
// Kamailio on 127.0.0.31:5060, the nodes on 127.0.0.32-34:5060 (their
// /stats on port 18090), SIPp on 127.0.0.35:5060, the drill's registration
// client on 127.0.0.36:5070, Cassandra where the other tests find it
// (127.0.0.1:9042 unless HOLDOVER_CASSANDRA_HOSTS says otherwise), in a
// fresh keyspace. Every check the drill makes reads what the stock tools
// and the nodes say (SIPp's statistics and logs, Kamailio's log, the nodes'
// logs and counters), so containers would add nothing to them.
//
// The drill is a Go test behind the build tag "drills":
//
//	make drill-sip          # both variants; e2e/out/sip.json
//	make drill-sip-short    # the kill variant, fewer calls (make test)
//
// The rule for failed calls and the readers of the tools' output
// (parse_test.go) carry no tag: `go test ./e2e/sip/` runs their unit tests.
// See README.md beside this file.
package sip
