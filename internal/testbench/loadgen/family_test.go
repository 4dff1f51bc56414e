package loadgen

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// familyReport returns the report of family name, failing the test when the
// report has none.
func familyReport(t *testing.T, rep Report, name string) FamilyReport {
	t.Helper()
	i := slices.IndexFunc(rep.Families, func(f FamilyReport) bool { return f.Name == name })
	if i < 0 {
		t.Fatalf("no report of family %q: %v", name, rep.Families)
	}
	return rep.Families[i]
}

// A family with a long flush delay is held to its own window: what it loses
// inside that window is no loss beyond it, although the same ages lost by
// the sessions of no family (20ms delay) are.
func TestFamilyLossWithinItsOwnWindow(t *testing.T) {
	var c *fakeCluster
	rep, progress, err := failoverRun(t, func(fc *fakeCluster, cfg *Config) {
		c = fc
		// Every session is written 1020ms after its first unwritten change:
		// 1s late for the 20ms of no family (window 70ms), in time for the
		// 1s of "slow" (window 1.05s). A dies 600ms into the run, before any
		// write: its sessions lose everything, up to 600ms old, however
		// few events a loaded machine sent.
		fc.flushLag = time.Second
		cfg.Families = []FamilyShare{{Name: "slow", Share: 0.5, FlushDelay: time.Second}}
	})
	if err != nil {
		t.Fatal(err)
	}
	none, slow := familyReport(t, rep, ""), familyReport(t, rep, "slow")
	if len(rep.Families) != 2 || rep.Families[0].Name != "" {
		t.Fatalf("families %v, want the sessions of none first, then slow", rep.Families)
	}
	if none.Sessions != 20 || slow.Sessions != 20 || none.Redirected != 10 || slow.Redirected != 10 {
		t.Fatalf("sessions %d and %d, redirected %d and %d; want 20 and 10 each", none.Sessions, slow.Sessions, none.Redirected, slow.Redirected)
	}
	if none.Window != 70*time.Millisecond || slow.Window != 1050*time.Millisecond || slow.FlushDelay != time.Second || rep.Window != none.Window {
		t.Fatalf("windows %v (no family) and %v (slow, delay %v), report %v; want 70ms and 1.05s", none.Window, slow.Window, slow.FlushDelay, rep.Window)
	}
	// Both lost events older than the 70ms window of no family: only those
	// of no family count beyond it.
	if none.LostBeyondWindow == 0 || none.MaxLostAge <= 70*time.Millisecond {
		t.Fatalf("no family: lost_beyond_window=%d max_lost_age=%v; want losses older than 70ms:\n%s", none.LostBeyondWindow, none.MaxLostAge, progress)
	}
	if slow.LostBeyondWindow != 0 || slow.LostWithinWindow == 0 || slow.MaxLostAge <= 70*time.Millisecond || slow.MaxLostAge > 1050*time.Millisecond {
		t.Fatalf("slow: lost_beyond_window=%d lost_within_window=%d max_lost_age=%v; want losses older than 70ms, all within 1.05s",
			slow.LostBeyondWindow, slow.LostWithinWindow, slow.MaxLostAge)
	}
	if rep.LostBeyondWindow != none.LostBeyondWindow || rep.LostWithinWindow != none.LostWithinWindow+slow.LostWithinWindow ||
		rep.Acknowledged != none.Acknowledged+slow.Acknowledged || rep.Adopted != none.Adopted+slow.Adopted {
		t.Fatalf("the families do not add up to the report: %v", rep)
	}
	// The first half of the sessions is named in the family.
	c.mu.Lock()
	named := 0
	for id := range c.nodes[1].resident {
		if strings.HasPrefix(id, "slow:lg-") {
			named++
		}
	}
	c.mu.Unlock()
	if named != 20 {
		t.Fatalf("%d sessions named slow:..., want 20", named)
	}
	for _, want := range []string{" family[]=delay_ms:20,window_ms:70,sessions:20,", " family[slow]=delay_ms:1000,window_ms:1050,sessions:20,", "lost_beyond_window:0,"} {
		if !strings.Contains(rep.String(), want) {
			t.Errorf("report lacks %q: %v", want, rep)
		}
	}
	if !strings.Contains(progress, "family windows slow=1.05s") || !strings.Contains(progress, "(slow 20, no family 20)") {
		t.Errorf("progress does not show the families:\n%s", progress)
	}
}

// Without FlushDelay, a family's delay is the one the node reports in GET
// /v1/info: sessions the node writes after 1s (none before A dies, 600ms
// in) are lost within their family's window, not beyond the node's 70ms.
func TestFamilyWindowFromTheNode(t *testing.T) {
	rep, progress, err := failoverRun(t, func(c *fakeCluster, cfg *Config) {
		c.famDelays = map[string]time.Duration{"reg": time.Second, "other": 5 * time.Millisecond}
		cfg.Families = []FamilyShare{{Name: "reg", Share: 0.25}, {Name: "call", Share: 0.25}}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("not OK:\n%s", progress)
	}
	reg, call := familyReport(t, rep, "reg"), familyReport(t, rep, "call")
	if reg.FlushDelay != time.Second || reg.Window != 1050*time.Millisecond || reg.Sessions != 10 || reg.NotFound != 5 {
		t.Fatalf("reg: delay %v, window %v, %d sessions, %d not found; want 1s, 1.05s, 10, 5", reg.FlushDelay, reg.Window, reg.Sessions, reg.NotFound)
	}
	// A family the node does not list is the node's delay.
	if call.FlushDelay != 20*time.Millisecond || call.Sessions != 10 {
		t.Fatalf("call: delay %v, %d sessions; want the node's 20ms, 10", call.FlushDelay, call.Sessions)
	}
	if reg.LostWithinWindow == 0 || reg.MaxLostAge <= 70*time.Millisecond {
		t.Fatalf("reg: lost_within_window=%d max_lost_age=%v; want losses older than the node's window", reg.LostWithinWindow, reg.MaxLostAge)
	}
}

// A family the node holds as shared takes no events: Run refuses it.
func TestFamilySharedOnTheNodeRefused(t *testing.T) {
	c := newFakeCluster(t, 20*time.Millisecond, time.Second)
	c.famDelays, c.famShared = map[string]time.Duration{"settings": 20 * time.Millisecond}, map[string]bool{"settings": true}
	a := c.start(t, "node-a")
	g, err := New(Config{Nodes: []Node{a.node("A")}, Sessions: 4, Duration: time.Second,
		Families: []FamilyShare{{Name: "settings", Share: 0.5}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Run(context.Background()); err == nil || !strings.Contains(err.Error(), `Families[0] ("settings") is a shared family`) {
		t.Fatalf("Run: %v; want the shared family refused", err)
	}
}

func TestFamiliesValidate(t *testing.T) {
	base := Config{Nodes: []Node{{Name: "A", URL: "http://127.0.0.1:1"}}}
	for _, tc := range []struct {
		fams []FamilyShare
		want string // "" for valid
	}{
		{[]FamilyShare{{Name: "reg", Share: 0.25}, {Name: "call", Share: 0.75, FlushDelay: time.Second}}, ""},
		{[]FamilyShare{{Name: "a.b_c-D9", Share: 1}}, ""},
		{[]FamilyShare{{Name: "", Share: 0.5}}, `Families[0].Name: "" is not 1..32 bytes of [A-Za-z0-9_.-]`},
		{[]FamilyShare{{Name: "re:g", Share: 0.5}}, `Families[0].Name: "re:g" is not`},
		{[]FamilyShare{{Name: strings.Repeat("x", 33), Share: 0.5}}, "Families[0].Name"},
		{[]FamilyShare{{Name: "reg", Share: 0.1}, {Name: "reg", Share: 0.1}}, `Families[1].Name: "reg" appears twice`},
		{[]FamilyShare{{Name: "reg", Share: 0}}, "Families[0].Share: 0 is outside (0, 1]"},
		{[]FamilyShare{{Name: "reg", Share: 1.5}}, "Families[0].Share: 1.5 is outside (0, 1]"},
		{[]FamilyShare{{Name: "reg", Share: -0.1}}, "Families[0].Share: -0.1 is outside (0, 1]"},
		{[]FamilyShare{{Name: "reg", Share: 0.75}, {Name: "call", Share: 0.5}}, "Families: the shares add up to 1.25, over 1"},
		{[]FamilyShare{{Name: "reg", Share: 0.5, FlushDelay: -time.Second}}, "Families[0].FlushDelay: -1s is negative"},
	} {
		cfg := base
		cfg.Families = tc.fams
		_, err := New(cfg)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v refused: %v", tc.fams, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want %q", tc.fams, err, tc.want)
		}
	}
}

func TestFamilyBounds(t *testing.T) {
	for _, tc := range []struct {
		sessions int
		shares   []float64
		want     []int
	}{
		{200, []float64{0.25, 0.5}, []int{50, 150}},
		{5, []float64{0.5, 0.5}, []int{3, 5}},
		{3, []float64{0.1}, []int{0}},
		{10, []float64{1}, []int{10}},
		{7, []float64{0.3, 0.3, 0.3}, []int{2, 4, 6}},
	} {
		fams := make([]FamilyShare, len(tc.shares))
		for i, s := range tc.shares {
			fams[i].Share = s
		}
		if got := familyBounds(tc.sessions, fams); !slices.Equal(got, tc.want) {
			t.Errorf("familyBounds(%d, %v) = %v, want %v", tc.sessions, tc.shares, got, tc.want)
		}
	}
}
