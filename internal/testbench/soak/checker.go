package soak

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"time"
)

// Invariants, as docs/invariants.md names them.
const (
	I1 = "I1" // durability
	I2 = "I2" // fencing and atomicity
	I3 = "I3" // single owner
	I4 = "I4" // life cycle
)

// Violation is one broken promise found in a history.
type Violation struct {
	Invariant string `json:"invariant"`
	// Kind says which rule: lost_beyond_window, never_had, stale_branch,
	// split_brain, ended_came_back, recreated_lost_writes, ended_row_with_items,
	// undecodable.
	Kind    string    `json:"kind"`
	Session string    `json:"session"`
	Seed    uint64    `json:"seed"`
	At      time.Time `json:"at"`
	What    string    `json:"what"`
	// Ops are the history sequence numbers involved: the observation first,
	// then the operations that produced the states at stake.
	Ops []int64 `json:"ops"`
}

// Report is what the checker found.
type Report struct {
	Seed       uint64         `json:"seed"`
	Violations map[string]int `json:"violations"` // by invariant, each of I1..I4 present
	ByKind     map[string]int `json:"violations_by_kind,omitempty"`
	// Examples are the first violations, in history order.
	Examples []Violation `json:"examples"`
	// Observations counts states checked: reads, restores, absences, final reads.
	Observations int `json:"observations"`
	// Restores counts observations of persisted state (adoptions, final reads).
	Restores int `json:"restores"`
	// FinalChecked counts sessions read from Cassandra at the end.
	FinalChecked int `json:"final_checked"`
	// LostWithinWindow counts acknowledged versions an observation did not
	// show but that the window excused (the loadgen's lost_within_window).
	LostWithinWindow int `json:"lost_within_window"`
	// MaxLostAgeMS is the oldest of those at the failure that excused it:
	// how long before that failure it was acknowledged, in ms (how close the
	// product came to its window; a Cassandra stall may stretch it).
	MaxLostAgeMS float64 `json:"max_lost_age_ms"`
	// MaxLost describes that loss.
	MaxLost string `json:"max_lost,omitempty"`
	// ProbeAcks counts events acknowledged by a node that no longer owned the
	// session (after a forced adoption from it): forks the product allows as
	// long as they never persist.
	ProbeAcks int `json:"probe_acks"`
	// ImplicitAdoptions counts events answered adopted=true (the node lost the
	// session from memory and adopted it again on the event).
	ImplicitAdoptions int `json:"implicit_adoptions"`
	// Unplaced counts operations whose base state the checker could not find
	// (their results are not checked).
	Unplaced int `json:"unplaced"`
}

// OK reports whether no invariant was broken.
func (r *Report) OK() bool {
	for _, n := range r.Violations {
		if n > 0 {
			return false
		}
	}
	return true
}

// maxExamples bounds Report.Examples.
const maxExamples = 50

// Checker checks a history record by record: Add each record in history
// order, then Report. Check and CheckHistory are the same as a pure function.
// It is not safe for concurrent use.
type Checker struct {
	meta     Meta
	window   time.Duration
	recovery time.Duration
	failures map[string][]failure // node name -> its failures, in time order
	stalls   []stall
	sessions map[string]*sess
	rep      Report
	// maxLostAge is Report.MaxLostAgeMS.
	maxLostAge time.Duration
}

type stall struct {
	start, end time.Time // end zero while Cassandra is stopped
}

// NewChecker returns a checker; the history's meta record configures it.
func NewChecker() *Checker {
	c := &Checker{failures: map[string][]failure{}, sessions: map[string]*sess{}}
	c.rep.Violations = map[string]int{I1: 0, I2: 0, I3: 0, I4: 0}
	c.rep.ByKind = map[string]int{}
	c.rep.Examples = []Violation{}
	return c
}

// Check runs a checker over records.
func Check(records []Record) Report {
	c := NewChecker()
	for _, r := range records {
		c.Add(r)
	}
	return c.Report()
}

// CheckHistory checks the JSON-lines history read from r.
func CheckHistory(r io.Reader) (Report, error) {
	c := NewChecker()
	err := ReadHistory(r, func(rec Record) error { c.Add(rec); return nil })
	return c.Report(), err
}

// Report returns what the checker found so far.
func (c *Checker) Report() Report {
	r := c.rep
	r.Violations = cloneCounts(r.Violations)
	r.ByKind = cloneCounts(r.ByKind)
	r.Examples = append([]Violation{}, r.Examples...)
	return r
}

func cloneCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Add checks one record.
func (c *Checker) Add(r Record) {
	switch r.Type {
	case RecMeta:
		if r.Meta != nil {
			c.meta = *r.Meta
			c.rep.Seed = r.Meta.Seed
			c.window = r.Meta.window()
			c.recovery = time.Duration(r.Meta.StallRecoveryMS) * time.Millisecond
		}
	case RecFault:
		c.fault(r)
	case RecOp:
		c.op(r)
	case RecFinal:
		c.final(r)
	}
}

func (c *Checker) fault(r Record) {
	switch r.Kind {
	case FaultKill, FaultKillInDrain, FaultPause, FaultPartition, FaultSelfFence:
		// A self-fence is the node's own log line: it acknowledges nothing
		// after it until it recovers, so no grace (failureGrace).
		fs := append(c.failures[r.Node], failure{at: r.Start, grace: r.Kind != FaultSelfFence})
		sort.Slice(fs, func(i, j int) bool { return fs[i].at.Before(fs[j].at) })
		c.failures[r.Node] = fs
	case FaultStall:
		c.stalls = append(c.stalls, stall{start: r.Start})
	case FaultStallEnd:
		for i := range c.stalls {
			if c.stalls[i].start.Equal(r.Start) {
				c.stalls[i].end = r.End
				return
			}
		}
		c.stalls = append(c.stalls, stall{start: r.Start, end: r.End})
	}
}

// cut is the latest acknowledgement time a failure at f still owes: what was
// acknowledged at or before it must survive f. It is f less the window; a
// Cassandra stall suspends the window: acknowledgements from the window
// before a stall's start are owed only once the stall ended and the recovery
// allowance and a window passed.
func (c *Checker) cut(f time.Time) time.Time {
	cut := f.Add(-c.window)
	for changed := true; changed; {
		changed = false
		for _, s := range c.stalls {
			if !s.start.Before(f) {
				continue
			}
			end := s.end
			if end.IsZero() {
				end = f.Add(time.Hour) // still stopped
			}
			if end.Add(c.recovery).After(cut) && s.start.Add(-c.window).Before(cut) {
				cut = s.start.Add(-c.window)
				changed = true
			}
		}
	}
	return cut
}

func (c *Checker) violate(inv, kind string, s *sess, t time.Time, ops []int64, format string, args ...any) {
	c.rep.Violations[inv]++
	c.rep.ByKind[kind]++
	if len(c.rep.Examples) < maxExamples {
		c.rep.Examples = append(c.rep.Examples, Violation{Invariant: inv, Kind: kind, Session: s.id, Seed: c.meta.Seed,
			At: t, What: fmt.Sprintf(format, args...), Ops: compactOps(ops)})
	}
}

func compactOps(ops []int64) []int64 {
	out := ops[:0:0]
	for _, o := range ops {
		if o != 0 && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}
