package soak

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Cluster is what the nemesis acts on: the nodes' processes and Cassandra's.
// cmd/holdover-load implements it with child processes.
type Cluster interface {
	// Kill sends SIGKILL to node and returns once its process is gone.
	Kill(node string) error
	// Term sends SIGTERM to node (a graceful drain) and returns at once.
	Term(node string) error
	// Stop and Cont send SIGSTOP and SIGCONT to node.
	Stop(node string) error
	Cont(node string) error
	// Wait waits up to timeout for node's process to exit and says how it
	// ended ("exit status 0", "signal: killed").
	Wait(node string, timeout time.Duration) (exited bool, how string)
	// Start starts node again with the same node ID and returns once it
	// answers /readyz (its Open waits for its previous lease to expire).
	Start(ctx context.Context, node string) error
	// Replace starts a second process for node, with its node ID, on its
	// other address, and returns the new URL once it answers /readyz. The
	// old process (stopped) stays; node+ZombieSuffix names it from then on
	// for Cont, Term, Kill and Wait.
	Replace(ctx context.Context, node string) (url string, err error)
	// StallCassandra stops Cassandra's process (SIGSTOP) for about hold;
	// ResumeCassandra continues it (SIGCONT). An implementation must
	// continue it even if this program dies meanwhile.
	StallCassandra(hold time.Duration) error
	ResumeCassandra() error
	// Partition drops every packet node sends to Cassandra (its connections
	// stay open, unanswered, as across a broken network) until Heal. An
	// implementation must heal the partition when this program ends.
	Partition(node string) error
	Heal(node string) error
}

// nemesis executes a fault plan against a cluster, records each step in
// the history and keeps the workload's view of the nodes current.
type nemesis struct {
	cl      Cluster
	hist    *History
	view    *view
	nodes   []NodeInfo
	index   map[string]int
	stalled bool
	// episodes counts the episodes run, by kind.
	episodes map[string]int

	// zombieAwake is how long a replaced process runs, awake, before its
	// SIGTERM (probes reach it meanwhile).
	zombieAwake time.Duration

	// takeoverAfter is how long after a node's failure an episode's
	// takeover is first asked, takeoverFor how long after that it is asked
	// again while the node's lease is live; cl2 asks it; takeovers counts
	// those running.
	takeoverAfter time.Duration
	takeoverFor   time.Duration
	cl2           client
	takeovers     sync.WaitGroup

	mu   sync.Mutex
	vgen []int // per node: bumped by every change of its view, so a late one is dropped
}

// setView changes node i's state in the workload's view now.
func (n *nemesis) setView(i int, st nodeState, restarted bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.vgen[i]++
	n.view.set(i, st, restarted)
}

// setViewAfter changes it after lag, as a load balancer's health check
// would, unless another change comes first. Meanwhile the workload keeps
// sending to the node.
func (n *nemesis) setViewAfter(i int, st nodeState, lag time.Duration) {
	n.mu.Lock()
	n.vgen[i]++
	g := n.vgen[i]
	n.mu.Unlock()
	time.AfterFunc(lag, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.vgen[i] == g {
			n.view.set(i, st, false)
		}
	})
}

func (n *nemesis) record(kind, node string, start, end time.Time, detail string) {
	n.hist.Add(Record{Type: RecFault, Kind: kind, Node: node, Start: start, End: end, Detail: detail})
}

// budget is about how long an episode takes, with its restart; the
// nemesis starts none that would end after the load (one that overruns
// delays the end).
func budget(e Episode, lease time.Duration) time.Duration {
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	switch e.Kind {
	case EpPause, EpStall, EpPartition:
		return ms(e.HoldMS) + 2*time.Second
	case EpReplace:
		return ms(e.HoldMS) + ms(e.DownMS) + 10*time.Second
	}
	return ms(e.HoldMS) + ms(e.DownMS) + lease + 5*time.Second
}

// run executes plan until it is done, until would be passed by the next
// episode, or ctx ends. It always leaves Cassandra running. An error means a
// node could not be restarted: the soak cannot go on.
func (n *nemesis) run(ctx context.Context, plan []Episode, until time.Time, lease time.Duration) error {
	defer func() {
		if n.stalled {
			_ = n.cl.ResumeCassandra()
			n.stalled = false
		}
	}()
	defer n.takeovers.Wait()
	for _, e := range plan {
		gap := time.Duration(e.GapMS) * time.Millisecond
		if time.Now().Add(gap + budget(e, lease)).After(until) {
			return nil
		}
		if !sleep(ctx, gap) {
			return nil
		}
		if err := n.episode(ctx, e); err != nil {
			return err
		}
		n.episodes[e.Kind]++
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (n *nemesis) episode(ctx context.Context, e Episode) error {
	hold := time.Duration(e.HoldMS) * time.Millisecond
	down := time.Duration(e.DownMS) * time.Millisecond
	lag := time.Duration(e.LagMS) * time.Millisecond
	i := n.index[e.Node]
	if by, ok := n.index[e.TakeoverBy]; ok && e.TakeoverBy != "" {
		n.takeoverLater(ctx, by, i)
	}
	switch e.Kind {
	case EpKill:
		t := time.Now()
		err := n.cl.Kill(e.Node)
		n.record(FaultKill, e.Node, t, time.Now(), fmt.Sprintf("SIGKILL; the workload learns it %v later", lag))
		n.setViewAfter(i, nodeDown, lag)
		if err != nil {
			return err
		}
		sleep(ctx, down)
		return n.restart(ctx, i)
	case EpPause:
		t := time.Now()
		err := n.cl.Stop(e.Node)
		n.record(FaultPause, e.Node, t, time.Time{}, fmt.Sprintf("SIGSTOP for %v; the workload learns it %v later", hold, lag))
		n.setViewAfter(i, nodePaused, lag)
		if err != nil {
			return err
		}
		sleep(ctx, hold) // continued whatever happens
		err = n.cl.Cont(e.Node)
		n.record(FaultResume, e.Node, time.Now(), time.Time{}, "SIGCONT")
		n.setView(i, nodeUp, false)
		return err
	case EpPartition:
		t := time.Now()
		err := n.cl.Partition(e.Node)
		n.record(FaultPartition, e.Node, t, time.Time{}, fmt.Sprintf("cut off from Cassandra for %v, still serving; the workload learns it %v later", hold, lag))
		n.setViewAfter(i, nodePaused, lag)
		if err != nil {
			return fmt.Errorf("partition node %s: %w", e.Node, err)
		}
		sleep(ctx, hold) // healed whatever happens
		err = n.cl.Heal(e.Node)
		n.record(FaultHeal, e.Node, time.Now(), time.Time{}, "reconnected to Cassandra")
		n.setView(i, nodeUp, false)
		return err
	case EpTermKill, EpRestart:
		termAt := time.Now()
		err := n.cl.Term(e.Node)
		n.record(FaultTerm, e.Node, termAt, time.Time{}, fmt.Sprintf("SIGTERM; the workload learns it %v later", lag))
		n.setViewAfter(i, nodeDraining, lag)
		if err != nil {
			return err
		}
		if e.Kind == EpTermKill {
			sleep(ctx, hold)
			if exited, how := n.cl.Wait(e.Node, 0); exited {
				n.record(FaultDrained, e.Node, time.Now(), time.Time{}, "exited within "+hold.String()+" of SIGTERM: "+how)
			} else {
				t := time.Now()
				err := n.cl.Kill(e.Node)
				n.record(FaultKillInDrain, e.Node, t, time.Now(), fmt.Sprintf("SIGKILL %v into the drain", t.Sub(termAt).Round(time.Millisecond)))
				if err != nil {
					return err
				}
			}
		} else if exited, how := n.cl.Wait(e.Node, 30*time.Second); exited {
			n.record(FaultDrained, e.Node, time.Now(), time.Time{}, how)
		} else {
			t := time.Now()
			err := n.cl.Kill(e.Node)
			n.record(FaultKill, e.Node, t, time.Now(), "SIGKILL: the drain did not end within 30s")
			if err != nil {
				return err
			}
		}
		if time.Since(termAt) < lag {
			sleep(ctx, lag-time.Since(termAt))
		}
		n.setView(i, nodeDown, false)
		sleep(ctx, down)
		return n.restart(ctx, i)
	case EpReplace:
		t := time.Now()
		err := n.cl.Stop(e.Node)
		n.record(FaultPause, e.Node, t, time.Time{}, fmt.Sprintf("SIGSTOP; replaced after %v; the workload learns it %v later", hold, lag))
		n.setViewAfter(i, nodePaused, lag)
		if err != nil {
			return err
		}
		sleep(ctx, hold)
		t = time.Now()
		url, err := n.cl.Replace(ctx, e.Node)
		if err != nil {
			n.record(FaultReplace, e.Node, t, time.Now(), "FAILED: "+err.Error())
			return fmt.Errorf("replace node %s: %w", e.Node, err)
		}
		n.record(FaultReplace, e.Node, t, time.Now(), fmt.Sprintf("new process at %s ready in %v; the old one stays stopped", url, time.Since(t).Round(time.Millisecond)))
		n.mu.Lock()
		n.vgen[i]++
		n.view.replaced(i, url)
		n.mu.Unlock()
		zombie := e.Node + ZombieSuffix
		sleep(ctx, down)
		err = n.cl.Cont(zombie)
		n.record(FaultResume, zombie, time.Now(), time.Time{}, "SIGCONT of the replaced process")
		n.view.setZombie(i, nodeUp)
		if err != nil {
			return err
		}
		sleep(ctx, n.zombieAwake)
		n.view.setZombie(i, nodeDraining)
		t = time.Now()
		if err := n.cl.Term(zombie); err != nil {
			return err
		}
		n.record(FaultTerm, zombie, t, time.Time{}, "SIGTERM of the replaced process")
		if exited, how := n.cl.Wait(zombie, 15*time.Second); exited {
			n.record(FaultDrained, zombie, time.Now(), time.Time{}, how)
		} else {
			t := time.Now()
			err := n.cl.Kill(zombie)
			n.record(FaultKill, zombie, t, time.Now(), "SIGKILL: its drain did not end within 15s")
			if err != nil {
				return err
			}
		}
		n.view.setZombie(i, nodeDown)
		return nil
	case EpStall:
		t := time.Now()
		n.stalled = true
		if err := n.cl.StallCassandra(hold); err != nil {
			n.stalled = false
			return fmt.Errorf("stall Cassandra: %w", err)
		}
		n.record(FaultStall, "", t, time.Time{}, fmt.Sprintf("SIGSTOP of Cassandra for %v", hold))
		sleep(ctx, hold)
		err := n.cl.ResumeCassandra()
		n.stalled = false
		n.record(FaultStallEnd, "", t, time.Now(), "SIGCONT of Cassandra")
		return err
	}
	return fmt.Errorf("soak: unknown episode kind %q", e.Kind)
}

// takeoverLater asks node by, from takeoverAfter on, to take over every
// session of node from, as an operator's script would: again every 100 ms
// while from's lease is live (409), up to takeoverFor, unless from is up
// again (or by is not). The workload's redirects race it for the sessions.
func (n *nemesis) takeoverLater(ctx context.Context, by, from int) {
	n.takeovers.Add(1)
	go func() {
		defer n.takeovers.Done()
		if !sleep(ctx, n.takeoverAfter) {
			return
		}
		rec := Record{Type: RecOp, Kind: OpTakeover, Node: n.nodes[by].Name, From: n.nodes[from].Name, Start: time.Now()}
		deadline := rec.Start.Add(n.takeoverFor)
		for {
			if st, _ := n.view.get(from); st == nodeUp {
				return
			}
			if st, _ := n.view.get(by); st != nodeUp {
				return
			}
			rec.Attempts++
			res, a := n.cl2.takeover(ctx, n.view.urlOf(by), n.nodes[from].ID)
			rec.End, rec.Status, rec.Err = time.Now(), a.Status, a.errText()
			if a.Status == http.StatusConflict && time.Now().Before(deadline) && sleep(ctx, 100*time.Millisecond) {
				continue // its lease is live yet
			}
			switch {
			case a.Err != nil:
				rec.Outcome = OutUnknown
			case a.Status == http.StatusOK:
				rec.Outcome = OutAck
				rec.Detail = fmt.Sprintf("listed=%d adopted=%d restored=%d skipped=%d failed=%d in %.0f ms",
					res.Listed, res.Adopted, res.Restored, res.Skipped, res.Failed, res.DurationMS)
				if len(res.Errors) > 0 {
					rec.Detail += "; " + strings.Join(res.Errors, "; ")
				}
			default:
				rec.Outcome = OutRefused
			}
			n.hist.Add(rec)
			return
		}
	}()
}

// restart starts node i again and marks it up in a new incarnation.
func (n *nemesis) restart(ctx context.Context, i int) error {
	name := n.nodes[i].Name
	t := time.Now()
	if err := n.cl.Start(ctx, name); err != nil {
		n.record(FaultRestart, name, t, time.Now(), "FAILED: "+err.Error())
		return fmt.Errorf("restart node %s: %w", name, err)
	}
	n.record(FaultRestart, name, t, time.Now(), fmt.Sprintf("ready in %v", time.Since(t).Round(time.Millisecond)))
	n.setView(i, nodeUp, true)
	return nil
}

// stopAll stops every node gracefully at the end (SIGTERM, drain), killing
// those that do not exit within timeout.
func (n *nemesis) stopAll(timeout time.Duration) error {
	var errs []error
	for i, nd := range n.nodes {
		st, _ := n.view.get(i)
		if st == nodeDown {
			continue
		}
		if st == nodePaused {
			_ = n.cl.Cont(nd.Name)
		}
		n.setView(i, nodeDraining, false)
		t := time.Now()
		if err := n.cl.Term(nd.Name); err != nil {
			errs = append(errs, err)
		}
		n.record(FaultTerm, nd.Name, t, time.Time{}, "SIGTERM at the end of the soak")
	}
	for i, nd := range n.nodes {
		st, _ := n.view.get(i)
		if st != nodeDraining {
			continue
		}
		if exited, how := n.cl.Wait(nd.Name, timeout); exited {
			n.record(FaultDrained, nd.Name, time.Now(), time.Time{}, how)
		} else {
			t := time.Now()
			err := n.cl.Kill(nd.Name)
			n.record(FaultKill, nd.Name, t, time.Now(), fmt.Sprintf("SIGKILL: the final drain did not end within %v", timeout))
			if err != nil {
				errs = append(errs, err)
			}
		}
		n.setView(i, nodeDown, false)
	}
	if len(errs) > 0 {
		return fmt.Errorf("stop nodes: %v", errs)
	}
	return nil
}
