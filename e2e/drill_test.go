//go:build drills

package e2e

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/testbench/loadgen"
)

// drillSpec is one drill: its name in the report and HOLDOVER_DRILLS, the
// size of the Cassandra ring it needs, and its body.
type drillSpec struct {
	name       string
	cassandras int
	run        func(d *drill)
}

// drills in the order they run. The lone Cassandra is shared by the drills
// that need one (each has its own keyspace); cassandra_outage restarts it;
// cassandra_node_loss replaces it with a ring of three, so it comes last.
var drills = []drillSpec{
	{"crash", 1, crashDrill},
	{"zombie", 1, zombieDrill},
	{"drain", 1, drainDrill},
	{"partition", 1, partitionDrill},
	{"adoption_race", 1, adoptionRaceDrill},
	{"cassandra_outage", 1, outageDrill},
	{"cassandra_node_loss", 3, nodeLossDrill},
}

func drillNames() []string {
	var n []string
	for _, d := range drills {
		n = append(n, d.name)
	}
	return n
}

// TestDrills runs the drills HOLDOVER_DRILLS names (all by default), in order.
func TestDrills(t *testing.T) {
	s := theSuite
	for _, name := range s.cfg.drills {
		i := slices.IndexFunc(drills, func(d drillSpec) bool { return d.name == name })
		t.Run(name, func(t *testing.T) { s.runDrill(t, drills[i]) })
	}
}

// drill is the state of one drill while it runs.
type drill struct {
	t        *testing.T
	ctx      context.Context
	s        *suite
	cfg      config
	name     string
	ring     *ring
	res      *result
	nodes    []*holdoverNode
	keyspace string
	prefix   string // session IDs are prefix + 0, 1, ...
	rd       *reader
}

func (s *suite) runDrill(t *testing.T, spec drillSpec) {
	res := &result{Name: spec.name}
	s.report.Drills = append(s.report.Drills, res)
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	d := &drill{
		t: t, ctx: ctx, s: s, cfg: s.cfg, name: spec.name, res: res,
		keyspace: "e2e_" + spec.name + "_" + s.e.run,
		prefix:   strings.ReplaceAll(spec.name, "_", "-") + "-" + s.e.run + "-",
	}
	defer func() {
		res.Seconds = time.Since(t0).Seconds()
		if t.Failed() && len(res.Failures) == 0 {
			res.Failures = append(res.Failures, "the drill stopped on an error (see the test log)")
		}
		res.Passed = !t.Failed() && len(res.Failures) == 0
		d.cleanup()
	}()
	r, err := s.ringOf(ctx, t, spec.cassandras)
	if err != nil {
		d.fatal("%v", err)
	}
	d.ring = r
	spec.run(d)
}

// fail records a broken promise; the drill goes on to measure the rest.
func (d *drill) fail(format string, args ...any) {
	d.t.Helper()
	msg := fmt.Sprintf(format, args...)
	d.res.Failures = append(d.res.Failures, msg)
	d.t.Errorf("%s", msg)
}

// fatal records an error that stops the drill.
func (d *drill) fatal(format string, args ...any) {
	d.t.Helper()
	msg := fmt.Sprintf(format, args...)
	d.res.Failures = append(d.res.Failures, msg)
	d.t.Fatalf("%s", msg)
}

func (d *drill) expect(ok bool, format string, args ...any) {
	d.t.Helper()
	if !ok {
		d.fail(format, args...)
	}
}

func (d *drill) logf(format string, args ...any) { d.t.Logf(format, args...) }

// cleanup keeps the logs and removes the drill's nodes.
func (d *drill) cleanup() {
	dir := filepath.Join(d.cfg.outDir, "logs", d.name)
	for _, n := range d.nodes {
		if n != nil {
			n.saveLogs(dir)
			if !d.cfg.keep {
				n.remove()
			}
		}
	}
	if d.t.Failed() && d.ring != nil {
		d.ring.saveLogs(dir)
	}
	if d.rd != nil {
		d.rd.close()
	}
}

// startNodes starts the drill's holdover nodes on its ring.
func (d *drill) startNodes(spec nodeSpec) []*holdoverNode {
	d.t.Helper()
	spec.Keyspace = d.keyspace
	t0 := time.Now()
	nodes, err := startNodes(d.ctx, d.ring, d.cfg, d.name, spec)
	for _, n := range nodes {
		if n != nil {
			d.nodes = append(d.nodes, n)
		}
	}
	if err != nil {
		d.fatal("%v", err)
	}
	d.logf("%d holdover nodes ready in %.1f s (flush delay %v, lease TTL %v)", spec.Count, time.Since(t0).Seconds(), spec.FlushDelay, spec.LeaseTTL)
	return nodes
}

// reader opens (once) the drill's reader of what Cassandra holds.
func (d *drill) reader() *reader {
	d.t.Helper()
	if d.rd == nil {
		rd, err := openReader(d.ring, d.keyspace)
		if err != nil {
			d.fatal("%v", err)
		}
		d.rd = rd
	}
	return d.rd
}

// ids are the drill's session IDs.
func (d *drill) ids() []string { return sessionIDs(d.prefix, d.cfg.sessions) }

// idsOf are the IDs of the sessions the load generator assigns to node i
// (round robin) out of count nodes.
func (d *drill) idsOf(i, count int) []string {
	var out []string
	for j, id := range d.ids() {
		if j%count == i {
			out = append(out, id)
		}
	}
	return out
}

// progress turns the load generator's lines into test log lines.
type progress struct{ d *drill }

func (p progress) Write(b []byte) (int, error) {
	p.d.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// load runs the load generator over the drill's nodes (cfg.Nodes defaults
// to all of them) and records what it measured.
func (d *drill) load(cfg loadgen.Config) loadgen.Report {
	d.t.Helper()
	if cfg.Nodes == nil {
		for _, n := range d.nodes {
			cfg.Nodes = append(cfg.Nodes, n.loadNode())
		}
	}
	cfg.Sessions = d.cfg.sessions
	cfg.Rate = d.cfg.rate
	cfg.SessionPrefix = d.prefix
	cfg.Progress = progress{d}
	g, err := loadgen.New(cfg)
	if err != nil {
		d.fatal("%v", err)
	}
	rep, err := g.Run(d.ctx)
	d.record(rep)
	if err != nil {
		d.fatal("load generator: %v", err)
	}
	return rep
}

// record puts the load generator's figures in the drill's result and checks
// its promises: nothing lost beyond the window, nothing corrupt, every
// redirected session restored, every session read back as acknowledged.
func (d *drill) record(rep loadgen.Report) {
	r := d.res
	r.Sessions = rep.Sessions
	r.AcknowledgedChanges = rep.Acknowledged
	r.LostBeyondWindow += rep.LostBeyondWindow
	r.set("lost_within_window", rep.LostWithinWindow)
	if len(rep.Failed) > 0 {
		r.set("window_ms", ms(rep.Window))
	}
	r.set("events_per_s", rep.EventsPerSec)
	r.set("event_p50_ms", rep.EventP50Ms)
	r.set("event_p99_ms", rep.EventP99Ms)
	if len(rep.Failed) > 0 {
		r.set("redirected", rep.Redirected)
		r.set("adopted", rep.Adopted)
		r.set("not_found", rep.NotFound)
		r.set("unrestored", rep.Unrestored)
		r.set("lease_wait_ms", ms(rep.LeaseWait))
		r.set("adopt_retries", rep.AdoptRetries)
		r.set("adopt_p50_ms", rep.AdoptP50Ms)
		r.set("adopt_p99_ms", rep.AdoptP99Ms)
		r.set("failover_p50_ms", rep.FailoverP50Ms)
		r.set("failover_p99_ms", rep.FailoverP99Ms)
		r.set("failover_max_ms", rep.FailoverMaxMs)
	}
	r.set("corrupt", rep.Corrupt)
	r.set("final_checked", rep.FinalChecked)
	r.set("final_mismatch", rep.FinalMismatch)
	failed := failedRequests(rep)
	r.set("failed_requests", failed)
	if len(rep.Errors) > 0 {
		r.set("errors", fmtCounts(rep.Errors))
	}
	d.logf("load: %v", rep)
	d.expect(rep.LostBeyondWindow == 0, "%d acknowledged changes lost beyond the window", rep.LostBeyondWindow)
	d.expect(rep.Corrupt == 0, "%d sessions restored or read back with a state they never had", rep.Corrupt)
	d.expect(rep.Unrestored == 0, "%d redirected sessions neither restored nor found absent", rep.Unrestored)
	d.expect(rep.FinalMismatch == 0, "%d sessions read back at the end differ from what was acknowledged", rep.FinalMismatch)
}

// failedRequests counts the requests that failed, leaving out the
// redirects the load generator follows when a survivor other than the one
// it asked won a session (not a failure: the session moved once).
func failedRequests(rep loadgen.Report) int64 {
	var n int64
	for k, v := range rep.Errors {
		if k != "adopt_owned_by_survivor" {
			n += v
		}
	}
	return n
}

func fmtCounts(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, ",")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// verify checks the state once the load has stopped: the buffers of drain
// drain, every session is held by exactly one of holders (the owners table
// agreeing), and Cassandra holds exactly what its holder holds.
func (d *drill) verify(holders, drain []*holdoverNode) {
	d.t.Helper()
	took, err := waitDrained(d.ctx, drain, 90*time.Second)
	if err != nil {
		d.fail("%v", err)
	}
	d.res.set("drained_after_load_ms", ms(took))
	rd := d.reader()
	o := checkOwnership(d.ctx, holders, rd, d.ids())
	for _, s := range o.details {
		d.logf("ownership: %s", s)
	}
	d.res.DuplicateOwners += o.Duplicates
	d.res.set("owned_sessions", len(o.views))
	d.res.set("owner_row_mismatch", o.OwnerMismatch)
	d.res.set("unowned", o.Unowned)
	d.expect(o.Duplicates == 0, "%d sessions resident on more than one node", o.Duplicates)
	d.expect(o.OwnerMismatch == 0, "%d sessions held by a node the owners table does not name", o.OwnerMismatch)
	d.expect(o.Errors == 0, "%d sessions could not be checked for ownership", o.Errors)
	missing, mismatched, details := persisted(d.ctx, rd, o.views)
	for _, s := range details {
		d.logf("persisted: %s", s)
	}
	d.res.LostBeyondWindow += missing
	d.res.set("not_persisted_sessions", mismatched)
	d.expect(mismatched == 0, "%d sessions' persisted state differs from their owner's (%d acknowledged changes missing in Cassandra)", mismatched, missing)
}

// staleCheck snapshots what Cassandra holds (no load runs), heals the
// failed node, gives it settle to do its worst, and counts the sessions
// whose persisted state changed: each is a stale overwrite.
func (d *drill) staleCheck(survivors []*holdoverNode, heal func() error, settle time.Duration) {
	d.t.Helper()
	if _, err := waitDrained(d.ctx, survivors, 90*time.Second); err != nil {
		d.fail("before healing: %v", err)
	}
	rd := d.reader()
	before, err := snapshot(d.ctx, rd, d.ids())
	if err != nil {
		d.fatal("snapshot before healing: %v", err)
	}
	if err := heal(); err != nil {
		d.fatal("%v", err)
	}
	select {
	case <-time.After(settle):
	case <-d.ctx.Done():
	}
	after, err := snapshot(d.ctx, rd, d.ids())
	if err != nil {
		d.fatal("snapshot after healing: %v", err)
	}
	n, details := changedSessions(before, after)
	for _, s := range details {
		d.logf("stale overwrite: %s", s)
	}
	d.res.StaleOverwrites += n
	d.expect(n == 0, "%d sessions overwritten in Cassandra by the failed node after it came back", n)
}

// metricsDelta is after - before for the named metrics.
func metricsDelta(before, after map[string]float64, names ...string) map[string]float64 {
	out := map[string]float64{}
	for _, n := range names {
		out[n] = metric(after, n) - metric(before, n)
	}
	return out
}

// sumMetric adds one metric over nodes (nodes that do not answer count 0).
func sumMetric(ctx context.Context, nodes []*holdoverNode, name string) float64 {
	var s float64
	for _, n := range nodes {
		if m, err := n.metrics(ctx); err == nil {
			s += metric(m, name)
		}
	}
	return s
}

// closedLine finds the node's "adapter closed" log line and returns its
// released= and unwritten_sessions= values ("" when absent).
func closedLine(logs string) (released, unwritten string, found bool) {
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "adapter closed") {
			continue
		}
		if m := regexp.MustCompile(`released=(\d+)`).FindStringSubmatch(line); m != nil {
			released = m[1]
		}
		if m := regexp.MustCompile(`unwritten_sessions=(\d+)`).FindStringSubmatch(line); m != nil {
			unwritten = m[1]
		}
		return released, unwritten, true
	}
	return "", "", false
}

// every runs f every period until stop closes; wait for it with the
// returned WaitGroup.
func every(period time.Duration, stop <-chan struct{}, f func()) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			f()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return &wg
}
