package soak

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Episode kinds of the nemesis.
const (
	EpKill     = "kill"      // SIGKILL a node; restart it with the same node ID after Down
	EpPause    = "pause"     // SIGSTOP a node for Hold (longer than its lease), then SIGCONT
	EpTermKill = "term-kill" // SIGTERM a node, SIGKILL it Hold (20-200ms) into the drain; restart after Down
	EpRestart  = "restart"   // SIGTERM a node, let it drain and exit; restart after Down
	EpStall    = "stall"     // SIGSTOP Cassandra for Hold, then SIGCONT
	// EpReplace: SIGSTOP a node for Hold (past its lease), start a new
	// process with its node ID on its other address, SIGCONT the old one
	// Down later (a zombie that must stay fenced), SIGTERM it 3s after.
	EpReplace = "replace"
	// EpPartition: cut a node off from Cassandra for Hold (past its lease)
	// while it keeps running and answering its clients, then reconnect it:
	// it must stop acknowledging, fence itself, and come back without
	// writing over the peers that adopted its sessions.
	EpPartition = "partition"
)

// EpisodeKinds are all the kinds, in the order a plan's first round shuffles.
var EpisodeKinds = []string{EpKill, EpPause, EpTermKill, EpRestart, EpStall, EpReplace, EpPartition}

// Episode is one fault of the plan.
type Episode struct {
	Kind string `json:"kind"`
	Node string `json:"node,omitempty"` // empty for a Cassandra stall
	// GapMS is the quiet time before it, counted from the end of the previous
	// episode (for the first: from the start of the load).
	GapMS int64 `json:"gap_ms"`
	// HoldMS is how long the fault lasts: the pause or stall; for term-kill
	// the delay of the SIGKILL after the SIGTERM.
	HoldMS int64 `json:"hold_ms,omitempty"`
	// DownMS is how long a killed or stopped node stays down before its
	// restart.
	DownMS int64 `json:"down_ms,omitempty"`
	// LagMS is how long after a node's fault the workload stops sending to
	// it (a load balancer's health check): events sent meanwhile meet a
	// dead, frozen or draining node.
	LagMS int64 `json:"lag_ms,omitempty"`
	// TakeoverBy names the node asked to take over all of Node's sessions
	// at once (OpTakeover) once Node's lease has expired, if Node is still
	// down, stopped or cut off then; empty: none (kill, pause, partition).
	TakeoverBy string `json:"takeover_by,omitempty"`
}

func (e Episode) String() string {
	s := fmt.Sprintf("+%.1fs %s", float64(e.GapMS)/1000, e.Kind)
	if e.Node != "" {
		s += " " + e.Node
	}
	if e.HoldMS > 0 {
		s += fmt.Sprintf(" hold=%dms", e.HoldMS)
	}
	if e.DownMS > 0 {
		s += fmt.Sprintf(" down=%dms", e.DownMS)
	}
	if e.LagMS > 0 {
		s += fmt.Sprintf(" lag=%dms", e.LagMS)
	}
	if e.TakeoverBy != "" {
		s += " takeover-by=" + e.TakeoverBy
	}
	return s
}

// PlanConfig shapes a fault plan.
type PlanConfig struct {
	Nodes    []string      // node names
	Kinds    []string      // episode kinds to use (default EpisodeKinds)
	Warmup   time.Duration // load before the first fault
	GapMin   time.Duration // quiet time between episodes, drawn uniformly
	GapMax   time.Duration
	LeaseTTL time.Duration // a pause lasts LeaseTTL + 0.1..2.5s
	Count    int           // episodes to plan
}

// Plan draws the fault schedule from seed: the same seed and configuration
// give the same plan. Kinds come in rounds, each round a shuffle of all
// kinds, so every kind appears once in each round.
func Plan(seed uint64, c PlanConfig) []Episode {
	kinds := c.Kinds
	if len(kinds) == 0 {
		kinds = EpisodeKinds
	}
	rng := rand.New(rand.NewPCG(seed, 0x6e656d65736973)) // "nemesis"
	ms := func(lo, hi time.Duration) int64 {
		return (lo + time.Duration(rng.Int64N(int64(hi-lo)+1))).Milliseconds()
	}
	var plan []Episode
	var round []string
	for i := 0; i < c.Count; i++ {
		if len(round) == 0 {
			round = append([]string(nil), kinds...)
			rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		}
		e := Episode{Kind: round[0], GapMS: ms(c.GapMin, c.GapMax)}
		round = round[1:]
		if i == 0 {
			e.GapMS = c.Warmup.Milliseconds()
		}
		if e.Kind != EpStall {
			e.Node = c.Nodes[rng.IntN(len(c.Nodes))]
			e.LagMS = ms(0, 500*time.Millisecond)
		}
		switch e.Kind {
		case EpKill:
			e.DownMS = ms(time.Second, 5*time.Second)
		case EpPause, EpPartition:
			e.HoldMS = (c.LeaseTTL + time.Duration(ms(100*time.Millisecond, 2500*time.Millisecond))*time.Millisecond).Milliseconds()
		case EpTermKill:
			// A drain here takes 20-200ms: an earlier SIGKILL lands in more of them.
			e.HoldMS = ms(20*time.Millisecond, 200*time.Millisecond)
			e.DownMS = ms(time.Second, 4*time.Second)
		case EpRestart:
			e.DownMS = ms(500*time.Millisecond, 2*time.Second)
		case EpStall:
			e.HoldMS = ms(2*time.Second, 4500*time.Millisecond)
		case EpReplace:
			e.HoldMS = (c.LeaseTTL + time.Duration(ms(300*time.Millisecond, 1500*time.Millisecond))*time.Millisecond).Milliseconds()
			e.DownMS = ms(500*time.Millisecond, 2*time.Second)
		}
		if (e.Kind == EpKill || e.Kind == EpPause || e.Kind == EpPartition) && len(c.Nodes) > 1 && rng.IntN(2) == 0 {
			by := c.Nodes[rng.IntN(len(c.Nodes)-1)]
			if by == e.Node {
				by = c.Nodes[len(c.Nodes)-1]
			}
			e.TakeoverBy = by
		}
		plan = append(plan, e)
	}
	return plan
}

// PlanDigest identifies a fault plan and the first draws of every
// session's stream of operations: two runs with one seed print the same.
func PlanDigest(seed uint64, plan []Episode, sessions int) string {
	h := sha256.New()
	b, _ := json.Marshal(plan)
	h.Write(b)
	for i := range sessions {
		p := newPlanner(seed, i)
		for range 32 {
			d := p.draw()
			fmt.Fprintf(h, "%d:%x:%x:%x;", i, d.r, d.a, d.b)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// FormatPlan renders a plan on one line per episode.
func FormatPlan(plan []Episode) string {
	var b strings.Builder
	for i, e := range plan {
		fmt.Fprintf(&b, "  %2d %v\n", i+1, e)
	}
	return b.String()
}

// planner is one session's stream of random choices: one draw per step, so
// the stream depends on the seed and the session's number only.
type planner struct {
	rng *rand.Rand
}

type draw struct {
	r    float64 // which operation
	a, b uint32  // its payload
}

func newPlanner(seed uint64, session int) *planner {
	return &planner{rng: rand.New(rand.NewPCG(seed, uint64(session)+1))}
}

func (p *planner) draw() draw {
	return draw{r: p.rng.Float64(), a: p.rng.Uint32(), b: p.rng.Uint32()}
}

// attrKeys are the attributes updates and unsets choose from.
var attrKeys = []string{"state", "codec", "leg", "media", "peer", "route"}
