package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// Results is what bench/out/results.json holds: every figure beside its
// anchor's from the same run. A figure that could not be measured is null,
// with the reason under Notes.
type Results struct {
	CommitUpdateNS      float64 `json:"commit_update_ns"`
	BaselineMapUpdateNS float64 `json:"baseline_map_update_ns"`
	// The commit of BenchmarkCommitDirtyKeyFamilies with three families and
	// with none (its anchor), interleaved with the others.
	CommitFamiliesNS        float64  `json:"commit_families_ns"`
	CommitNoFamiliesNS      float64  `json:"commit_no_families_ns"`
	CommitUpdateAllocs      float64  `json:"commit_update_allocs"`
	PendingKeyOverheadBytes float64  `json:"pending_key_overhead_bytes"`
	FlushRowsPerS           float64  `json:"flush_rows_per_s"`
	RawGocqlRowsPerS        float64  `json:"raw_gocql_rows_per_s"`
	StressRowsPerS          *float64 `json:"stress_rows_per_s"`
	FlushMultiRowsPerS      float64  `json:"flush_multi_rows_per_s"`
	RawGocqlMultiRowsPerS   float64  `json:"raw_gocql_multi_rows_per_s"`
	WritesIssued            int      `json:"writes_issued"`
	WritesMinimum           int      `json:"writes_minimum"`
	ZipfCommits             int      `json:"zipf_commits"`
	WritesEdgeCommits       int      `json:"writes_edge_commits"`
	AdoptP50MS              float64  `json:"adopt_p50_ms"`
	AdoptP99MS              float64  `json:"adopt_p99_ms"`
	FloorP50MS              float64  `json:"floor_p50_ms"`
	FloorP99MS              float64  `json:"floor_p99_ms"`
	FloorFenceP50MS         float64  `json:"floor_fence_p50_ms"`
	FloorFenceP99MS         float64  `json:"floor_fence_p99_ms"`
	AdoptReleasedP50MS      float64  `json:"adopt_released_p50_ms"`
	AdoptReleasedP99MS      float64  `json:"adopt_released_p99_ms"`
	CreateOwnerLWTP50MS     float64  `json:"create_owner_lwt_p50_ms"`
	CreateOwnerLWTP99MS     float64  `json:"create_owner_lwt_p99_ms"`
	PlainInsertP50MS        float64  `json:"plain_insert_p50_ms"`
	PlainInsertP99MS        float64  `json:"plain_insert_p99_ms"`
	ClaimP50MS              float64  `json:"claim_p50_ms"`
	ClaimP99MS              float64  `json:"claim_p99_ms"`
	PlainReadP50MS          float64  `json:"plain_read_p50_ms"`
	PlainReadP99MS          float64  `json:"plain_read_p99_ms"`
	// Window holds the window step's figures (its rpo_* and flush_start_*
	// keys, inline).
	Window
	// WindowPriority says how the window figures above (rpo_* and
	// flush_start_*) were measured: with this process scheduled ahead of
	// the Cassandra nodes it shares the cores with (how they were lowered),
	// or at equal priority. WindowShared holds the same figures from a run
	// at equal priority just before, null when the priority was not lowered.
	WindowPriority       string  `json:"window_priority"`
	WindowShared         *Window `json:"window_shared"`
	TakeoverSessionsPerS float64 `json:"takeover_sessions_per_s"`
	RawClaimsPerS        float64 `json:"raw_claims_per_s"`
	// Failover holds the figures of a separate failover run (-failover),
	// null when it was not measured.
	Failover

	Machine          string   `json:"machine"`
	CassandraVersion string   `json:"cassandra_version"`
	Date             string   `json:"date"`
	Notes            []string `json:"notes,omitempty"`
}

// Window is one window run's figures: the rpo_* and flush_start_* keys.
type Window struct {
	RPOMaxMS            float64  `json:"rpo_max_ms"`
	RPOBoundMS          float64  `json:"rpo_bound_ms"`
	RPOLoadPerS         float64  `json:"rpo_load_commits_per_s"`
	RPOWorstLateMS      float64  `json:"rpo_worst_late_ms"`
	RPOWorstFlightMS    float64  `json:"rpo_worst_flight_ms"`
	RPOSchedP99MS       float64  `json:"rpo_sched_latency_p99_ms"`
	RPOSchedMaxMS       float64  `json:"rpo_sched_latency_max_ms"`
	RPOCPUPressurePct   *float64 `json:"rpo_cpu_pressure_pct"`
	FlushStartLateP99MS float64  `json:"flush_start_late_p99_ms"`
	FlushStartLateMaxMS float64  `json:"flush_start_late_max_ms"`
	// FlushStartsHeld counts the late starts that waited for the session's
	// previous write to land (a session has one write in flight at a time);
	// FlushStartLateOwn* are the lateness of all the other starts.
	FlushStartsHeld        int     `json:"flush_starts_held"`
	FlushStartLateOwnP99MS float64 `json:"flush_start_late_unheld_p99_ms"`
	FlushStartLateOwnMaxMS float64 `json:"flush_start_late_unheld_max_ms"`
}

// Window returns the run's figures.
func (rp RPOResult) Window() Window {
	return Window{
		RPOMaxMS: rp.MaxMS, RPOBoundMS: rp.BoundMS, RPOLoadPerS: rp.Rate,
		RPOWorstLateMS: rp.WorstLateMS, RPOWorstFlightMS: rp.WorstFlightMS,
		RPOSchedP99MS: rp.SchedP99MS, RPOSchedMaxMS: rp.SchedMaxMS, RPOCPUPressurePct: rp.CPUPressurePct,
		FlushStartLateP99MS: rp.FlushStartLateP99MS, FlushStartLateMaxMS: rp.FlushStartLateMaxMS,
		FlushStartsHeld: rp.HeldStarts, FlushStartLateOwnP99MS: rp.FreeStartLateP99MS, FlushStartLateOwnMaxMS: rp.FreeStartLateMaxMS,
	}
}

// Machine describes where the run happened.
func Machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	return fmt.Sprintf("%s/%s, %d cores, %s, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), model, runtime.Version())
}

// Write stores r as indented JSON.
func (r *Results) Write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Table prints the figures beside their anchors and goals.
func (r *Results) Table(w io.Writer) {
	ratio := func(a, b float64) string {
		if b == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2fx", a/b)
	}
	// A label longer than the first column (the overload row's) pushes its
	// row to the right rather than widen the table past a terminal.
	row := func(what, ours, anchor, rat, goal string) {
		fmt.Fprintf(w, "%-36s %14s %16s %8s   %s\n", what, ours, anchor, rat, goal)
	}
	row("figure", "holdover", "anchor", "ratio", "goal")
	row("commit to a dirty key (ns/op)", f1(r.CommitUpdateNS), f1(r.BaselineMapUpdateNS)+" map", ratio(r.CommitUpdateNS, r.BaselineMapUpdateNS), "<= 1.5x, 0 allocs (got "+f1(r.CommitUpdateAllocs)+")")
	row("commit, 3 families (ns/op)", f1(r.CommitFamiliesNS), f1(r.CommitNoFamiliesNS)+" none", ratio(r.CommitFamiliesNS, r.CommitNoFamiliesNS), "nothing measurable (~1.0x)")
	row("overhead per pending key (B)", f1(r.PendingKeyOverheadBytes), "-", "-", "<= 64")
	row("flush, 1 item/session (rows/s)", f0(r.FlushRowsPerS), f0(r.RawGocqlRowsPerS)+" gocql", ratio(r.FlushRowsPerS, r.RawGocqlRowsPerS), ">= 1.0x")
	row("flush, 8 items/session (rows/s)", f0(r.FlushMultiRowsPerS), f0(r.RawGocqlMultiRowsPerS)+" gocql", ratio(r.FlushMultiRowsPerS, r.RawGocqlMultiRowsPerS), ">= 1.5x")
	stress := "unavailable"
	if r.StressRowsPerS != nil {
		stress = f0(*r.StressRowsPerS)
	}
	row("cassandra-stress write (rows/s)", "-", stress, "-", "reference")
	row("writes issued (Zipf)", fmt.Sprint(r.WritesIssued), fmt.Sprint(r.WritesMinimum)+" min", ratio(float64(r.WritesIssued), float64(r.WritesMinimum)),
		fmt.Sprintf("= minimum (difference %+d; %d commits at window edges)", r.WritesIssued-r.WritesMinimum, r.WritesEdgeCommits))
	row("adoption p50 (ms)", f2(r.AdoptP50MS), f2(r.FloorP50MS)+" floor", ratio(r.AdoptP50MS, r.FloorP50MS), "")
	row("adoption p99 (ms)", f2(r.AdoptP99MS), f2(r.FloorP99MS)+" floor", ratio(r.AdoptP99MS, r.FloorP99MS), "reference (crash goal: next row)")
	row("crash adoption p50 / p99 (ms)", f2(r.AdoptP50MS)+" / "+f2(r.AdoptP99MS), f2(r.FloorFenceP50MS)+" / "+f2(r.FloorFenceP99MS)+" +fence", ratio(r.AdoptP99MS, r.FloorFenceP99MS), "<= 1.1x (floor + fencing write)")
	row("released adoption p50 / p99 (ms)", f2(r.AdoptReleasedP50MS)+" / "+f2(r.AdoptReleasedP99MS), f2(r.FloorP50MS)+" / "+f2(r.FloorP99MS)+" floor", ratio(r.AdoptReleasedP99MS, r.FloorP99MS), "<= 1.2x (no fence needed)")
	row("bulk takeover (sessions/s)", f0(r.TakeoverSessionsPerS), f0(r.RawClaimsPerS)+" claims", ratio(r.TakeoverSessionsPerS, r.RawClaimsPerS), ">= 0.8x")
	row("new-session ownership LWT p50 (ms)", f2(r.CreateOwnerLWTP50MS), f2(r.PlainInsertP50MS)+" insert", ratio(r.CreateOwnerLWTP50MS, r.PlainInsertP50MS), "once per session")
	row("claim LWT p50 / p99 (ms)", f2(r.ClaimP50MS)+" / "+f2(r.ClaimP99MS), f2(r.PlainReadP50MS)+" / "+f2(r.PlainReadP99MS)+" read", ratio(r.ClaimP50MS, r.PlainReadP50MS), "")
	// The largest age is a maximum; its bound is made of p99 flights, so one
	// slow write puts it over: a reference, beside the write that closed it.
	row("largest unflushed age (ms)", f1(r.RPOMaxMS), f1(r.RPOBoundMS)+" bound", ratio(r.RPOMaxMS, r.RPOBoundMS), "reference (bound: delay + 2 x p99 flight)")
	row("  its write: past due + flight (ms)", f1(r.RPOWorstLateMS)+" + "+f1(r.RPOWorstFlightMS), "-", "-", "the age is delay + these")
	row("flush start past due p99 / max (ms)", f1(r.FlushStartLateP99MS)+" / "+f1(r.FlushStartLateMaxMS), f1(r.RPOSchedP99MS)+" / "+f1(r.RPOSchedMaxMS)+" sched", "-", "max < 20 ms")
	row("  not held behind the session's write", f1(r.FlushStartLateOwnP99MS)+" / "+f1(r.FlushStartLateOwnMaxMS), f1(r.RPOSchedP99MS)+" / "+f1(r.RPOSchedMaxMS)+" sched", "-",
		fmt.Sprintf("max < 20 ms (%d starts held)", r.FlushStartsHeld))
	if s := r.WindowShared; s != nil {
		row("  at equal priority: largest age (ms)", f1(s.RPOMaxMS), f1(s.RPOBoundMS)+" bound", ratio(s.RPOMaxMS, s.RPOBoundMS), "reference (cores shared)")
		row("  at equal priority: past due (ms)", f1(s.FlushStartLateP99MS)+" / "+f1(s.FlushStartLateMaxMS), f1(s.RPOSchedP99MS)+" / "+f1(s.RPOSchedMaxMS)+" sched", "-", "reference (cores shared)")
	}
	failover, ttl := "not measured", "-"
	if f := r.Failover; f.FailoverP50MS != nil && f.FailoverP99MS != nil && f.FailoverMaxMS != nil {
		failover = f0(*f.FailoverP50MS) + " / " + f0(*f.FailoverP99MS) + " / " + f0(*f.FailoverMaxMS)
	}
	if r.LeaseTTLMS != nil {
		ttl = f0(*r.LeaseTTLMS) + " lease TTL"
		if r.FailoverFloorMS != nil {
			ttl += " (lease ended at " + f0(*r.FailoverFloorMS) + ")"
		}
	}
	load := "failover p50/p99/max (ms)"
	if f := r.Failover; f.SteadyEventsPerS != nil && f.SaturationEventsPerS != nil {
		load = fmt.Sprintf("failover p50/p99/max (ms) at %s of %s events/s", f0(*f.SteadyEventsPerS), f0(*f.SaturationEventsPerS))
	}
	row(load, failover, ttl, "-", "p99 <= TTL + 300 ms")
	overload := "not measured"
	if f := r.Failover; f.OverloadLostBeyondWindow != nil && f.OverloadRefusals != nil && f.FalseFences != nil {
		overload = fmt.Sprintf("%d / %d / %d", *f.OverloadLostBeyondWindow, *f.OverloadRefusals, *f.FalseFences)
	}
	row("overload: lost beyond window / refusals / false fences", overload, "-", "-", "0 / - / 0")
	pressure := "not reported"
	if r.RPOCPUPressurePct != nil {
		pressure = fmt.Sprintf("%.0f%% of the run", *r.RPOCPUPressurePct)
	}
	fmt.Fprintf(w, "  window's worst write: started %.1f ms past due, flew %.1f ms; goroutines waited for a core p99 %.1f ms, max %.1f ms; tasks waited for a CPU %s\n",
		r.RPOWorstLateMS, r.RPOWorstFlightMS, r.RPOSchedP99MS, r.RPOSchedMaxMS, pressure)
	if r.WindowPriority != "" {
		fmt.Fprintf(w, "  window measured %s\n", r.WindowPriority)
	}
	fmt.Fprintf(w, "machine: %s; Cassandra %s; %s\n", r.Machine, r.CassandraVersion, r.Date)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
