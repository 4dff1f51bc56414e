package loadgen

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Families (Config.Families). A session's family is fixed when Run builds the
// sessions: the first share of them is in Families[0], the next in
// Families[1], and so on, the rest in no family; sessions go to the nodes
// round robin across all of them, so each node gets its part of every
// family. A session is held to its family's window wherever the window is
// checked (a redirect, a resync): its family's flush delay plus
// WindowAllowance.

// famCounters are one family's figures (index 0: the sessions of no family).
type famCounters struct {
	sessions                       int
	acked                          int64
	redirected, adopted, notFound  int
	lostBeyond, lostWithin         int64
	maxLostAge, window, flushDelay time.Duration
}

// FamilyReport is what a Run measured of one family's sessions.
type FamilyReport struct {
	// Name is the family's name; "" for the sessions of no family.
	Name string
	// FlushDelay is the family's flush delay the check used (the largest
	// over the nodes), and Window the durability window its sessions were
	// held to when a node failed (FlushDelay + WindowAllowance; 0 when no
	// node failed).
	FlushDelay, Window time.Duration
	// Sessions is the number of the family's sessions; Acknowledged counts
	// their events a node answered 200.
	Sessions     int
	Acknowledged int64
	// Redirected, Adopted and NotFound are Report's, for the family's
	// sessions.
	Redirected, Adopted, NotFound int
	// LostBeyondWindow and LostWithinWindow are Report's, for the family's
	// sessions and its window.
	LostBeyondWindow, LostWithinWindow int64
	// MaxLostAge is the age of the oldest acknowledged event lost, at the
	// moment its node failed (or, for a live node, when the loss was found):
	// how close to the window the losses came. 0 when nothing was lost.
	MaxLostAge time.Duration
}

func (f FamilyReport) String() string {
	return fmt.Sprintf("delay_ms:%.0f,window_ms:%.0f,sessions:%d,acknowledged:%d,redirected:%d,adopted:%d,not_found:%d,lost_beyond_window:%d,lost_within_window:%d,max_lost_age_ms:%.0f",
		ms(f.FlushDelay), ms(f.Window), f.Sessions, f.Acknowledged, f.Redirected, f.Adopted, f.NotFound,
		f.LostBeyondWindow, f.LostWithinWindow, ms(f.MaxLostAge))
}

// formatFamilies renders the families' reports for Report.String: one
// "family[NAME]=..." field each, "family[]" for the sessions of no family;
// "" without families.
func formatFamilies(fs []FamilyReport) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, " family[%s]=%v", f.Name, f)
	}
	return b.String()
}

// familyBounds returns, for each of Families, the index of the first session
// after its share: session i is in Families[k] when bounds[k-1] <= i <
// bounds[k] (bounds[-1] being 0). Rounding the running sum keeps the shares
// within Sessions.
func familyBounds(sessions int, fams []FamilyShare) []int {
	bounds := make([]int, len(fams))
	sum := 0.0
	for k, f := range fams {
		sum += f.Share
		bounds[k] = min(int(math.Round(sum*float64(sessions))), sessions)
	}
	return bounds
}

// sessionID names session i of family fam (0: none).
func (g *Generator) sessionID(i, fam int) string {
	if fam == 0 {
		return fmt.Sprintf("%s%d", g.cfg.SessionPrefix, i)
	}
	return fmt.Sprintf("%s:%s%d", g.cfg.Families[fam-1].Name, g.cfg.SessionPrefix, i)
}

// flushDelay is the flush delay of family fam's sessions on n.
func (g *Generator) flushDelay(n *nodeState, fam int) time.Duration {
	if fam > 0 {
		f := g.cfg.Families[fam-1]
		if f.FlushDelay > 0 {
			return f.FlushDelay
		}
		if fi, ok := n.families[f.Name]; ok && fi.FlushDelayMS > 0 {
			return time.Duration(fi.FlushDelayMS) * time.Millisecond
		}
	}
	return n.flushDelay
}

// window is the durability window of family fam's sessions on n.
func (g *Generator) window(n *nodeState, fam int) time.Duration {
	return g.flushDelay(n, fam) + g.cfg.WindowAllowance
}

// checkFamilies refuses a family a node holds as shared: its sessions take
// no events.
func (g *Generator) checkFamilies(n *nodeState) error {
	for k, f := range g.cfg.Families {
		if fi, ok := n.families[f.Name]; ok && fi.Shared {
			return fmt.Errorf("loadgen: node %s: Families[%d] (%q) is a shared family there; load drives owned sessions", n.Name, k, f.Name)
		}
	}
	return nil
}

// familyName is the name of family fam, "" for none.
func (g *Generator) familyName(fam int) string {
	if fam == 0 {
		return ""
	}
	return g.cfg.Families[fam-1].Name
}

// familyReports returns the families' figures; nil without Families. The
// caller holds g.mu.
func (g *Generator) familyReports() []FamilyReport {
	if len(g.cfg.Families) == 0 {
		return nil
	}
	out := make([]FamilyReport, len(g.stats.fams))
	for k, c := range g.stats.fams {
		out[k] = FamilyReport{Name: g.familyName(k), FlushDelay: c.flushDelay, Window: c.window,
			Sessions: c.sessions, Acknowledged: c.acked, Redirected: c.redirected, Adopted: c.adopted, NotFound: c.notFound,
			LostBeyondWindow: c.lostBeyond, LostWithinWindow: c.lostWithin, MaxLostAge: c.maxLostAge}
	}
	return out
}

// familyDelays renders the flush delays n reports for Families, for the
// progress line: " families=reg:1s,call:50ms", or "".
func (g *Generator) familyDelays(n *nodeState) string {
	if len(g.cfg.Families) == 0 {
		return ""
	}
	parts := make([]string, len(g.cfg.Families))
	for k, f := range g.cfg.Families {
		parts[k] = fmt.Sprintf("%s:%v", f.Name, g.flushDelay(n, k+1))
	}
	return " families=" + strings.Join(parts, ",")
}

// familyMix renders the sessions of each family, for the progress line:
// " (reg 50, call 100, no family 50)", or "".
func (g *Generator) familyMix() string {
	if len(g.cfg.Families) == 0 {
		return ""
	}
	parts := make([]string, 0, len(g.stats.fams))
	for k := 1; k < len(g.stats.fams); k++ {
		parts = append(parts, fmt.Sprintf("%s %d", g.familyName(k), g.stats.fams[k].sessions))
	}
	parts = append(parts, fmt.Sprintf("no family %d", g.stats.fams[0].sessions))
	return " (" + strings.Join(parts, ", ") + ")"
}

// familyWindows renders the windows of Families' sessions on n, for the
// redirect's progress line: "; family windows reg=1.25s,call=300ms", or "".
func (g *Generator) familyWindows(n *nodeState) string {
	if len(g.cfg.Families) == 0 {
		return ""
	}
	parts := make([]string, len(g.cfg.Families))
	for k, f := range g.cfg.Families {
		parts[k] = fmt.Sprintf("%s=%v", f.Name, g.window(n, k+1))
	}
	return "; family windows " + strings.Join(parts, ",")
}
