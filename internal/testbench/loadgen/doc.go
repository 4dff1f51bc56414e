// Package loadgen drives session load against holdover reference nodes
// (cmd/holdover-node) over their HTTP API, fails one node at a chosen moment,
// redirects that node's sessions to the survivors and proves nothing
// acknowledged outside the durability window was lost.
//
// Each session is assigned to one node. Its events are a create and then a
// random mix of update and append, sent one at a time per session at a total
// rate across all sessions. The generator models every session's state
// itself: for each event it keeps the version the node must answer, the
// digest of the state the session must have after it, and, once the node
// answered 200, the time of that acknowledgement.
//
// When a node fails (Config.Failure, or an explicit Redirect), each of its
// sessions is sent to a survivor (round robin) as GET /v1/sessions/{id}?adopt=true.
// The version r the survivor restores must come with exactly the state the
// model had at version r (otherwise the session counts as Corrupt), and r must
// reach every version acknowledged before failedAt - window, where window is
// the failed node's flush delay (from GET /v1/info) plus
// Config.WindowAllowance. Acknowledged versions above r and at most that bound
// count as LostBeyondWindow; the ones above both only as LostWithinWindow,
// which the product allows. Load then continues on the new owner, and at the
// end every live session is read back once and compared with the model.
//
// With Config.Families, shares of the sessions are named in families of the
// nodes ("reg:<prefix><i>", see docs/families.md), and each session is held
// to its family's window: the family's flush delay (FamilyShare.FlushDelay,
// or what the node reports for the family) plus WindowAllowance. The report
// breaks the sessions, acknowledgements and losses down by family.
//
// Typical use, with the failure done by the caller's hook (a SIGKILL, docker
// kill, docker pause):
//
//	g, err := loadgen.New(loadgen.Config{
//		Nodes:    []loadgen.Node{{Name: "A", URL: urlA}, {Name: "B", URL: urlB}},
//		Sessions: 200, Rate: 300, Duration: 20 * time.Second,
//		Failure: &loadgen.Failure{Node: "A", After: 10 * time.Second,
//			Fail: func(ctx context.Context, n loadgen.Node) error { return cmdA.Process.Kill() }},
//		Progress: os.Stderr,
//	})
//	rep, err := g.Run(ctx)
//	if err == nil && !rep.OK() { ... }
//
// The generator only speaks HTTP; it never touches Cassandra.
package loadgen
