//go:build drills

package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	dc "github.com/ory/dockertest/v3/docker"

	"github.com/holdover/holdover/internal/testbench/loadgen"
)

// Settings the drills share. The flush delay is the product's default; the
// lease TTL is short so that adoption after a failure is quick.
const (
	flushDelay = 100 * time.Millisecond
	leaseTTL   = 4 * time.Second
	loadFor    = 20 * time.Second // load per drill
	failAfter  = 8 * time.Second  // when the failure happens
)

// crash: SIGKILL a node under load; peers adopt its sessions once its lease
// expires; nothing acknowledged more than the window before the kill is lost.
func crashDrill(d *drill) {
	nodes := d.startNodes(nodeSpec{Count: 3, FlushDelay: flushDelay, LeaseTTL: leaseTTL})
	a := nodes[0]
	d.load(loadgen.Config{
		Duration:     loadFor,
		AdoptTimeout: leaseTTL + 20*time.Second,
		Failure: &loadgen.Failure{Node: a.short, After: failAfter, Fail: func(ctx context.Context, _ loadgen.Node) error {
			if err := a.signal(dc.SIGKILL); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := a.waitExit(ctx)
			return err
		}},
	})
	d.res.set("lease_ttl_ms", ms(leaseTTL))
	d.verify(nodes[1:], nodes[1:])
}

// zombie: pause a node (docker pause) under load, let its peers adopt its
// sessions, unpause it; nothing it had buffered (nor any request it
// received while frozen) may become visible in Cassandra.
func zombieDrill(d *drill) {
	nodes := d.startNodes(nodeSpec{Count: 3, FlushDelay: flushDelay, LeaseTTL: leaseTTL})
	a, survivors := nodes[0], nodes[1:]
	var before map[string]float64
	var pausedAt time.Time
	d.load(loadgen.Config{
		Duration:     loadFor,
		AdoptTimeout: leaseTTL + 20*time.Second,
		Failure: &loadgen.Failure{Node: a.short, After: failAfter, Fail: func(ctx context.Context, _ loadgen.Node) error {
			var err error
			if before, err = a.metrics(ctx); err != nil {
				return fmt.Errorf("metrics of %s before the pause: %w", a.name, err)
			}
			d.res.set("zombie_pending_sessions_at_pause", metric(before, mPendingSessions))
			pausedAt = time.Now()
			return a.pause()
		}},
	})
	d.res.set("lease_ttl_ms", ms(leaseTTL))

	// The frozen node wakes with its buffer and its stale requests; give it
	// two lease TTLs to notice it lost its lease, and its flushes to land.
	// Halfway through, send the zombie events for the sessions it had: it
	// must not acknowledge any (their changes could never persist), and if
	// it wrote them, the second snapshot shows it.
	var unpausedAt time.Time
	acks, probes := 0, 0
	d.staleCheck(survivors, func() error {
		unpausedAt = time.Now()
		if err := a.unpause(); err != nil {
			return err
		}
		time.Sleep(leaseTTL)
		for _, id := range d.idsOf(0, len(nodes))[:10] {
			probes++
			status, err := a.post(d.ctx, id, event{Type: "update", Attrs: map[string]string{"zombie": "probe"}})
			if err == nil && status == 200 {
				acks++
			}
		}
		return nil
	}, leaseTTL+2*time.Second)
	d.res.set("zombie_probe_events", probes)
	d.res.set("zombie_probe_acks", acks)
	d.expect(acks == 0, "after its pause the zombie acknowledged %d of %d events for sessions its peers had adopted (changes that can never persist)", acks, probes)
	d.res.set("paused_s", unpausedAt.Sub(pausedAt).Seconds())
	after, err := a.metrics(d.ctx)
	if err != nil {
		d.fail("the zombie does not answer after its pause: %v", err)
	} else {
		delta := metricsDelta(before, after, mFlushes, mFlushRetries, mFlushDrops, mDroppedItems, mSelfFences)
		d.res.set("zombie_flushes_after_resume", delta[mFlushes])
		d.res.set("zombie_flush_retries", delta[mFlushRetries])
		d.res.set("zombie_dropped_snapshots", delta[mFlushDrops])
		d.res.set("zombie_dropped_items", delta[mDroppedItems])
		d.res.set("zombie_self_fences", delta[mSelfFences])
	}
	// The zombie is a holder candidate: if it still served its old sessions
	// next to their new owners, that is a duplicate owner.
	d.verify(nodes, survivors)
}

// drain: SIGTERM a node under load; it finishes its requests, flushes and
// releases its sessions, so peers adopt them at once (no lease wait) and
// nothing at all is lost.
func drainDrill(d *drill) {
	// A long lease: a peer that had to wait for it would show at once.
	const drainLease = 30 * time.Second
	nodes := d.startNodes(nodeSpec{Count: 3, FlushDelay: flushDelay, LeaseTTL: drainLease})
	a := nodes[0]
	var dr drainWatch
	rep := d.load(loadgen.Config{
		Duration:     loadFor,
		AdoptTimeout: drainLease + 15*time.Second,
		Failure:      &loadgen.Failure{Node: a.short, After: failAfter, Fail: dr.sigterm(a)},
	})
	drain := dr.exitAt.Sub(dr.termAt)
	// The load generator's lease wait runs from the failure (the SIGTERM)
	// to the first adoption; the node's own drain is part of it.
	afterExit := rep.LeaseWait - drain
	d.res.set("lease_ttl_ms", ms(drainLease))
	d.res.set("drain_ms", ms(drain))
	d.res.set("adopt_after_exit_ms", ms(afterExit))
	d.res.set("exit_code", dr.exitCode)
	released, unwritten, found := closedLine(a.logs())
	d.res.set("released_sessions", released)
	d.res.set("unwritten_sessions", unwritten)
	d.expect(dr.exitCode == 0, "the drained node exited with status %d", dr.exitCode)
	d.expect(found && unwritten == "0", "the drained node did not report a clean close (released=%q unwritten_sessions=%q)", released, unwritten)
	d.expect(rep.LostWithinWindow == 0, "%d acknowledged changes lost by a graceful drain (it must lose none)", rep.LostWithinWindow)
	d.expect(rep.AdoptRetries == 0, "%d adoptions had to wait for the drained node's lease: its sessions were not released", rep.AdoptRetries)
	d.expect(afterExit < 2*time.Second, "peers adopted %v after the drained node exited; released sessions must be adopted at once", afterExit)
	d.verify(nodes[1:], nodes[1:])
}

// partition: cut one node off Cassandra only (docker network disconnect);
// it keeps answering HTTP but must self-fence within the lease TTL; peers
// adopt its sessions; after healing, none of its writes may land.
func partitionDrill(d *drill) {
	nodes := d.startNodes(nodeSpec{Count: 3, FlushDelay: flushDelay, LeaseTTL: leaseTTL})
	a, survivors := nodes[0], nodes[1:]
	var cutAt, fencedAt time.Time
	var watch sync.WaitGroup
	d.load(loadgen.Config{
		Duration:     loadFor,
		AdoptTimeout: leaseTTL + 20*time.Second,
		Failure: &loadgen.Failure{Node: a.short, After: failAfter, Fail: func(ctx context.Context, _ loadgen.Node) error {
			cutAt = time.Now()
			if err := a.disconnect(d.ring.data); err != nil {
				return err
			}
			// Watch, over the front network, for the node to fence itself.
			watch.Add(1)
			go func() {
				defer watch.Done()
				deadline := cutAt.Add(3 * leaseTTL)
				for time.Now().Before(deadline) {
					if m, err := a.metrics(d.ctx); err == nil && metric(m, mFenced) >= 1 {
						fencedAt = time.Now()
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
			return nil
		}},
	})
	watch.Wait()
	d.res.set("lease_ttl_ms", ms(leaseTTL))
	if fencedAt.IsZero() {
		d.fail("the partitioned node did not fence itself within %v", 3*leaseTTL)
	} else {
		took := fencedAt.Sub(cutAt)
		d.res.set("self_fence_ms", ms(took))
		d.expect(took <= leaseTTL+500*time.Millisecond, "the partitioned node fenced itself %v after the cut, later than its lease TTL %v", took, leaseTTL)
	}
	// After healing, the node recovers its lease and takes events again.
	readyAfter := time.Duration(-1)
	var ready sync.WaitGroup
	d.staleCheck(survivors, func() error {
		healedAt := time.Now()
		if err := a.connect(d.ring.data, nodeHost(0)); err != nil {
			return err
		}
		ready.Add(1)
		go func() {
			defer ready.Done()
			for deadline := healedAt.Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if a.ready(d.ctx) {
					readyAfter = time.Since(healedAt)
					return
				}
			}
		}()
		return nil
	}, 2*leaseTTL+2*time.Second)
	ready.Wait()
	if readyAfter < 0 {
		d.fail("the partitioned node was not ready again 30 s after healing")
	} else {
		d.res.set("ready_after_heal_s", readyAfter.Seconds())
	}
	d.verify(nodes, survivors)
}

// adoption_race: kill a node, then send each of its sessions to all the
// other nodes at the same moment; exactly one wins each session and the
// others are told who did.
func adoptionRaceDrill(d *drill) {
	const count = 4
	nodes := d.startNodes(nodeSpec{Count: count, FlushDelay: flushDelay, LeaseTTL: leaseTTL})
	a, contenders := nodes[0], nodes[1:]
	ids := d.idsOf(0, count)
	type tally struct {
		sessions, winners, noWinner, doubleWinners, toldWinner, toldOther, errs int
		took                                                                    time.Duration
	}
	var tl tally
	d.load(loadgen.Config{
		Duration:     loadFor,
		AdoptTimeout: leaseTTL + 20*time.Second,
		Failure: &loadgen.Failure{Node: a.short, After: failAfter, Fail: func(ctx context.Context, _ loadgen.Node) error {
			killedAt := time.Now()
			if err := a.signal(dc.SIGKILL); err != nil {
				return err
			}
			// Race once the lease has run out, so every contender may claim.
			select {
			case <-time.After(time.Until(killedAt.Add(leaseTTL + time.Second))):
			case <-ctx.Done():
				return ctx.Err()
			}
			answers := make([][]answer, len(ids))
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, id := range ids {
				answers[i] = make([]answer, len(contenders))
				for j, c := range contenders {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						answers[i][j] = c.get(ctx, id, true)
					}()
				}
			}
			t0 := time.Now()
			close(start)
			wg.Wait()
			tl.took = time.Since(t0)
			for i := range ids {
				tl.sessions++
				var won []int
				for j, an := range answers[i] {
					if an.Status == 200 && an.Err == nil {
						won = append(won, j)
					}
				}
				switch len(won) {
				case 0:
					tl.noWinner++
				case 1:
					tl.winners++
				default:
					tl.doubleWinners++
					d.logf("race: %s won by %d nodes at once", ids[i], len(won))
				}
				for j, an := range answers[i] {
					switch {
					case an.Status == 200:
					case an.Status == 409 && len(won) == 1 && an.Owner == contenders[won[0]].id:
						tl.toldWinner++
					case an.Status == 409:
						tl.toldOther++
						d.logf("race: %s: %s was told the owner is %q", ids[i], contenders[j].short, an.Owner)
					default:
						tl.errs++
						d.logf("race: %s on %s: status %d %v", ids[i], contenders[j].short, an.Status, an.Err)
					}
				}
			}
			return nil
		}},
	})
	d.res.set("lease_ttl_ms", ms(leaseTTL))
	d.res.set("race_sessions", tl.sessions)
	d.res.set("race_contenders", len(contenders))
	d.res.set("race_single_winner", tl.winners)
	d.res.set("race_no_winner", tl.noWinner)
	d.res.set("race_double_winner", tl.doubleWinners)
	d.res.set("race_losers_told_winner", tl.toldWinner)
	d.res.set("race_losers_told_other", tl.toldOther)
	d.res.set("race_errors", tl.errs)
	d.res.set("race_ms", ms(tl.took))
	d.res.set("claim_conflicts", sumMetric(d.ctx, contenders, mClaimConflicts))
	d.res.DuplicateOwners += tl.doubleWinners
	d.expect(tl.doubleWinners == 0, "%d sessions were adopted by more than one node in the race", tl.doubleWinners)
	d.expect(tl.winners == tl.sessions, "%d of %d raced sessions had no winner", tl.sessions-tl.winners, tl.sessions)
	d.expect(tl.toldOther == 0 && tl.errs == 0, "losers of the race were told a wrong owner (%d) or failed (%d)", tl.toldOther, tl.errs)
	d.verify(contenders, contenders)
}

// cassandra_outage: stop Cassandra for 30 s under load; the nodes keep
// answering events from memory, their buffers stay bounded, and once
// Cassandra is back every acknowledged change is persisted.
func outageDrill(d *drill) {
	const (
		outage     = 30 * time.Second
		outageAt   = 10 * time.Second
		maxPending = 64 << 20
	)
	// The lease must outlive the outage and Cassandra's restart: a node
	// that cannot renew it within the TTL fences itself, by design.
	const outageLease = 90 * time.Second
	// A host that prefers to keep serving through an outage raises the
	// window bound above it (by default commits are refused, 503, once the
	// oldest unwritten change would outlive 10 x the flush delay): what a
	// crash can lose is then bounded by that window instead.
	nodes := d.startNodes(nodeSpec{Count: 3, FlushDelay: flushDelay, LeaseTTL: outageLease, MaxPending: strconv.Itoa(maxPending),
		Extra: []string{"HOLDOVER_MAX_WINDOW=" + outageLease.String()}})
	c := d.ring.nodes[0]

	// Sample the buffers of every node.
	var mu sync.Mutex
	var peakBytes, peakNodeBytes, peakSessions, peakAge float64
	var backAt, drainedAt time.Time
	stop := make(chan struct{})
	sampler := every(250*time.Millisecond, stop, func() {
		var bytes, sessions, age float64
		for _, n := range nodes {
			m, err := n.metrics(d.ctx)
			if err != nil {
				continue
			}
			b := metric(m, mPendingBytes)
			bytes += b
			sessions += metric(m, mPendingSessions)
			age = max(age, metric(m, "holdover_buffer_oldest_pending_age_milliseconds"))
			mu.Lock()
			peakNodeBytes = max(peakNodeBytes, b)
			mu.Unlock()
		}
		mu.Lock()
		defer mu.Unlock()
		peakBytes = max(peakBytes, bytes)
		peakSessions = max(peakSessions, sessions)
		peakAge = max(peakAge, age)
		if !backAt.IsZero() && drainedAt.IsZero() && age < 1000 {
			drainedAt = time.Now()
		}
	})

	// Stop Cassandra at outageAt, start it again outage later.
	var stoppedFor, restart time.Duration
	var outageErr error
	var outageWG sync.WaitGroup
	outageWG.Add(1)
	go func() {
		defer outageWG.Done()
		time.Sleep(outageAt)
		t0 := time.Now()
		d.logf("stopping Cassandra %s", c.name)
		if outageErr = c.stop(10 * time.Second); outageErr != nil {
			return
		}
		time.Sleep(time.Until(t0.Add(outage)))
		t1 := time.Now()
		stoppedFor = t1.Sub(t0)
		d.logf("starting Cassandra %s after %.1f s", c.name, stoppedFor.Seconds())
		if outageErr = c.start(); outageErr != nil {
			return
		}
		outageErr = waitCQL(d.ctx, c, c.ip(d.ring.data), d.cfg.cassandraStart)
		restart = time.Since(t1)
		mu.Lock()
		backAt = time.Now()
		mu.Unlock()
		d.logf("Cassandra answers again %.1f s after its start", restart.Seconds())
	}()

	rep := d.load(loadgen.Config{Duration: outageAt + outage + 35*time.Second})
	outageWG.Wait()
	if outageErr != nil {
		close(stop)
		sampler.Wait()
		d.fatal("the outage could not be staged: %v", outageErr)
	}
	d.verify(nodes, nodes)
	close(stop)
	sampler.Wait()

	var memPeak uint64
	for _, n := range nodes {
		memPeak = max(memPeak, n.memoryPeak())
	}
	refusals := sumMetric(d.ctx, nodes, mRefusals)
	failed := failedRequests(rep)
	mu.Lock()
	defer mu.Unlock()
	d.res.set("lease_ttl_ms", ms(outageLease))
	d.res.set("outage_s", stoppedFor.Seconds())
	d.res.set("cassandra_restart_s", restart.Seconds())
	if !drainedAt.IsZero() {
		d.res.set("backlog_flushed_after_return_s", drainedAt.Sub(backAt).Seconds())
	}
	d.res.set("buffer_peak_bytes", int64(peakBytes))
	d.res.set("buffer_peak_bytes_per_node", int64(peakNodeBytes))
	d.res.set("buffer_peak_sessions", int64(peakSessions))
	d.res.set("oldest_pending_peak_s", peakAge/1000)
	d.res.set("buffer_cap_bytes", maxPending)
	d.res.set("node_memory_peak_mib", float64(memPeak)/(1<<20))
	d.res.set("commit_refusals", int64(refusals))
	d.expect(failed == 0, "%d requests failed while Cassandra was away (%s); nodes must keep answering events", failed, fmtCounts(rep.Errors))
	d.expect(refusals == 0, "%v commits refused for a full buffer", refusals)
	d.expect(peakNodeBytes < maxPending, "a node's buffer reached %v bytes, at or over its cap %d", peakNodeBytes, maxPending)
	d.expect(peakAge >= float64(outage.Milliseconds())*0.9, "the oldest pending change peaked at %.0f ms: the outage did not hold back the flushes", peakAge)
}

// cassandra_node_loss: a ring of three at replication factor 3 and quorum;
// kill one Cassandra node under load, then drain a holdover node so its
// sessions are released and adopted (lightweight transactions) on the two
// replicas left; no event fails and nothing is lost.
func nodeLossDrill(d *drill) {
	const (
		killAt  = 8 * time.Second
		drainAt = 16 * time.Second
		lease   = 6 * time.Second
	)
	// The window bound is raised: this drill is about availability when a
	// replica dies. On two cores the three-node ring records the 300
	// sessions' ownership (a Paxos round each) in seconds, and after the kill
	// flushes took up to 7.5 s (seen with a 15 s bound, which then refused
	// 806 events): with the default bound (10 x the flush delay) the nodes
	// refuse events then, rightly, since those changes are unwritten that long.
	nodes := d.startNodes(nodeSpec{Count: 3, FlushDelay: flushDelay, LeaseTTL: lease, Replication: 3,
		Extra: []string{"HOLDOVER_MAX_WINDOW=60s"}})
	a := nodes[0]
	victim := d.ring.nodes[len(d.ring.nodes)-1]
	var killErr error
	var kill sync.WaitGroup
	kill.Add(1)
	go func() {
		defer kill.Done()
		time.Sleep(killAt)
		d.logf("killing Cassandra %s", victim.name)
		killErr = victim.signal(dc.SIGKILL)
	}()
	var dr drainWatch
	rep := d.load(loadgen.Config{
		Duration:     28 * time.Second,
		AdoptTimeout: lease + 20*time.Second,
		Failure:      &loadgen.Failure{Node: a.short, After: drainAt, Fail: dr.sigterm(a)},
	})
	kill.Wait()
	if killErr != nil {
		d.fatal("could not kill Cassandra %s: %v", victim.name, killErr)
	}
	// Events must not fail. The adopting GETs of the redirect may time out
	// and be retried while the ring still waits to convict the dead node:
	// they are counted, not failed.
	var failed, adoptErrs int64
	for k, v := range rep.Errors {
		switch {
		case strings.HasPrefix(k, "adopt_"):
			adoptErrs += v
		default:
			failed += v
		}
	}
	released, _, _ := closedLine(a.logs())
	d.res.set("released_sessions", released)
	d.res.set("adopt_errors", adoptErrs)
	d.res.set("replication_factor", 3)
	d.res.set("consistency", "LOCAL_QUORUM")
	d.res.set("cassandra_killed_at_s", killAt.Seconds())
	d.res.set("drain_ms", ms(dr.exitAt.Sub(dr.termAt)))
	d.res.set("exit_code", dr.exitCode)
	d.res.set("flush_retries", int64(sumMetric(d.ctx, nodes[1:], mFlushRetries)))
	d.expect(failed == 0, "%d events failed with one Cassandra replica down (%s)", failed, fmtCounts(rep.Errors))
	d.expect(rep.LostWithinWindow == 0, "%d acknowledged changes lost (the drain must lose none)", rep.LostWithinWindow)
	d.expect(dr.exitCode == 0, "the drained node exited with status %d", dr.exitCode)
	d.verify(nodes[1:], nodes[1:])
	// The next user of this ring would find a dead node: drop it.
	d.s.ring.remove()
	d.s.ring = nil
}

// drainWatch is the failure hook of the drills that drain a node: SIGTERM,
// then wait (up to 40 s) for the process to exit, recording when and how.
type drainWatch struct {
	termAt, exitAt time.Time
	exitCode       int
}

func (w *drainWatch) sigterm(a *holdoverNode) func(context.Context, loadgen.Node) error {
	return func(ctx context.Context, _ loadgen.Node) error {
		w.termAt = time.Now()
		if err := a.signal(dc.SIGTERM); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
		defer cancel()
		var err error
		w.exitCode, err = a.waitExit(ctx)
		w.exitAt = time.Now()
		return err
	}
}
