// Package soak is holdover's nemesis soak: a seeded schedule of faults
// against reference nodes (cmd/holdover-node) under a session workload, a
// history of everything that happened, and a checker of the four promises
// (docs/invariants.md) over that history.
//
// # Workload
//
// Each session ID has one worker; it has at most one operation in flight,
// and operations over all sessions are paced at Config.Rate. A session is
// created on a node, takes updates, appends and unsets (attribute deletes),
// is read back now and then, ends after 15 to 90 events and is created
// afresh under the same ID, on any node. The workload learns of a fault up
// to 500 ms after it (a load balancer's health check), so events meet dead,
// frozen and draining nodes. When its node is killed, paused, draining or
// restarted, a session is redirected: another node (or the restarted one) is
// asked GET ?adopt=true until it adopts it; some redirects force the
// adoption (?force=true) while the dead node's lease is live, some ask two
// nodes at once (exactly one may win). Now and then a session's adoption is
// forced away from its live owner (a dispossession); that owner is then sent
// one probe event, and so is a node that was paused, or replaced, while
// peers adopted its sessions. An operation whose outcome is unknown (timeout,
// cut connection) or that answered a version the workload did not expect is
// followed by a read of what the node holds.
//
// In about half of the kills, pauses and partitions, an operator's script
// also asks a survivor to take over all of the failed node's sessions at
// once (POST /v1/takeover/{node}, OpTakeover: from half the lease TTL on,
// again every 100 ms while the lease is live), racing the redirects; the
// sessions it made resident are checked through the workload's next
// observations of them. The last node also runs with
// HOLDOVER_NODE_TAKEOVER_ON_EXPIRY: asked for a session of a live peer, it
// takes over all of that peer's sessions the moment its lease expires.
//
// The seed fixes the fault plan and each session's stream of choices; what a
// choice becomes depends on earlier outcomes, so two runs with one seed
// replay the same plan (PlanDigest), not the same interleaving.
//
// # Nemesis
//
// Episodes run one at a time, separated by quiet gaps of 5-10 s: SIGKILL of a
// node and its restart with the same node ID 1-5 s later (its Open waits for
// the old lease); SIGSTOP of a node for its lease TTL + 0.1-2.5 s, then
// SIGCONT; SIGTERM and SIGKILL 20-200 ms into the drain, then a restart; a
// graceful restart; SIGSTOP of the Cassandra JVM for 2-4.5 s, then SIGCONT
// (the Cluster continues Cassandra even if the soak dies); a replacement:
// SIGSTOP of a node past its lease, a new process with its node ID on another
// address, SIGCONT of the old one (which must stay fenced), then its SIGTERM;
// a partition: a node cut off from Cassandra for its lease TTL + 0.1-2.5 s
// while it runs on and answers its clients (the Cluster drops its packets to
// Cassandra: an iptables rule matching the node's own cgroup), then
// reconnected; it must stop acknowledging, fence itself, and come back
// without its writes showing over the peers that adopted its sessions. A
// partition counts for I1 as a failure at its start.
//
// # History
//
// One JSON object per line (Record): a meta record (seed, window, plan), one
// record per operation (start, end, node, session, the event sent, the state
// the node was believed to hold, the outcome: ack, refused, unknown,
// observed, absent, and what a read or an adoption showed), one per fault
// step, and one per session read from Cassandra after the nodes stopped.
//
// # Checker
//
// The checker rebuilds, for each session, the tree of states it had or may
// have had: every event sent produces a child of the state it was applied to
// (acknowledged or not), computed with the node's semantics. The line is the
// path from the root to the state the workload now believes the session is
// in. Every observation (a read of a node's memory, an adoption restoring from
// Cassandra, a 404, the final read) is located in the tree and checked; it
// then becomes the session's current state.
//
//   - I2: the observed state must be a node of the tree (same version and
//     digest of attributes and history): a state the session had, never a
//     mix (never_had). A state on a branch the line left behind (an event
//     superseded by an adoption, a write of an older owner) must never be
//     observed again (stale_branch).
//   - I3: when the observed state lies on such a branch and that branch holds
//     a state acknowledged by node X while the line, after the fork, holds one
//     acknowledged by node Y != X, two nodes acknowledged conflicting changes
//     and X's persisted (split_brain). A probe acknowledged by a dispossessed
//     node is counted (probe_acks), no violation unless it is observed later.
//     Two nodes asked at once must not both adopt (double_adoption).
//   - I1: an observation on the line must show at least the deepest state it
//     owes: one restored from Cassandra earlier (by an adoption, explicit or
//     implied by an event or an End answered adopted=true, or seen absent
//     or ended there), or one acknowledged that no failure excuses. The first failure of the acknowledging node after the
//     event was sent (SIGKILL, SIGKILL in a drain, SIGSTOP, a partition, a
//     self-fence the node logged, or a forced adoption of that session away
//     from it) excuses the acknowledgement when
//     it came after failure - window, window = flush delay + allowance (the
//     loadgen's lost_beyond_window); a Cassandra stall suspends the window (see
//     Checker.cut). A graceful drain excuses nothing.
//   - I4: an observation lacking an acknowledged end it owes
//     (ended_came_back); showing no session, or an earlier generation, where a
//     generation started afresh after an end owes acknowledged states
//     (recreated_lost_writes); showing a state from before an end or a
//     re-create (ended_came_back); a final ownership row marked ended while
//     items of a generation never ended persist (ended_row_with_items). Expiry of
//     untouched state (HOLDOVER_STATE_TTL) is not checked: a soak is far
//     shorter.
//
// Each violation names the invariant, the session, the seed and the history
// sequence numbers of the observation and of the operations at stake.
package soak
