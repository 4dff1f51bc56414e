//go:build drills

package sip

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nodeStats is what a node's /stats says (examples/sipnode/stats.go).
type nodeStats struct {
	Invites              int64            `json:"invites"`
	Answered             int64            `json:"answered"`
	Acks                 int64            `json:"acks"`
	InDialog             int64            `json:"in_dialog"`
	Byes                 int64            `json:"byes"`
	Registers            int64            `json:"registers"`
	Answered481          int64            `json:"answered_481"`
	Answered503          int64            `json:"answered_503"`
	NotFound             int64            `json:"not_found"`
	Refused              int64            `json:"commits_refused"`
	Raced                int64            `json:"adoptions_raced"`
	HoldTimeouts         int64            `json:"hold_timeouts"`
	AdoptErrors          int64            `json:"adopt_errors"`
	AdoptedDialogs       int64            `json:"adopted_dialogs"`
	AdoptedRegistrations int64            `json:"adopted_registrations"`
	Held                 int64            `json:"held"`
	AdoptMS              []float64        `json:"adopt_ms,omitempty"`
	HeldMS               []float64        `json:"held_ms,omitempty"`
	AnsweredAfterAdopt   map[string]int64 `json:"answered_after_adoption"`
}

// failedCall is one call SIPp counted as failed, and how the drill explains it.
type failedCall struct {
	CallID string `json:"call_id"`
	// Reason is SIPp's error for it.
	Reason string `json:"sipp_error,omitempty"`
	// Explained: "committed_within_window" (its dialog was committed on the
	// failed node less than the window before the failure), or
	// "invite_in_flight_not_retried" (its INVITE was sent before the failure,
	// not answered by then, and the proxy did not send it elsewhere), or
	// "refused_at_setup" (a node answered the INVITE 5xx without creating a
	// dialog: its commit refused under overload, or the node fenced while
	// Cassandra did not answer its lease renewals; the caller was told, no
	// dialog was acknowledged; not a failover loss, counted apart and
	// reported); empty: not explained, a failure of the drill.
	Explained string `json:"explained"`
	// CommittedBeforeFailureMS: how long before the failure the failed node
	// committed its dialog (when it did).
	CommittedBeforeFailureMS *float64 `json:"committed_before_failure_ms,omitempty"`
	InviteBeforeFailureMS    *float64 `json:"invite_before_failure_ms,omitempty"`
	Rerouted                 []string `json:"rerouted,omitempty"`
}

// result is one variant's figures.
type result struct {
	Name                    string  `json:"name"`
	Signal                  string  `json:"signal"`
	Keyspace                string  `json:"keyspace"`
	FlushDelayMS            float64 `json:"flush_delay_ms"`
	LeaseTTLMS              float64 `json:"lease_ttl_ms"`
	HoldMS                  float64 `json:"node_hold_ms"`
	WindowMS                float64 `json:"window_ms"`
	KamailioInDialogTimerMS float64 `json:"kamailio_in_dialog_timer_ms"`
	CallsPlanned            int     `json:"calls_planned"`
	CallsPerS               float64 `json:"calls_per_s"`
	HoldCallMS              float64 `json:"call_hold_ms"`
	FailAfterMS             float64 `json:"failure_after_ms"`

	// From SIPp's statistics (-trace_stat): calls created, successful, failed.
	Calls    int `json:"calls"`
	OK       int `json:"ok"`
	Failed   int `json:"failed"`
	SIPpExit int `json:"sipp_exit"`

	FlushBeforeAnswer  bool         `json:"flush_before_answer"`
	SetupP50MS         float64      `json:"setup_p50_ms"`
	SetupP99MS         float64      `json:"setup_p99_ms"`
	FailedBeyondWindow int          `json:"failed_beyond_window"`
	RefusedAtSetup     int          `json:"refused_at_setup"`
	ByeRetries         int          `json:"bye_retries"`
	FailedCalls        []failedCall `json:"failed_calls"`

	// Dialogs the failed node held when it failed (created, not yet ended).
	VictimDialogsLive int `json:"victim_dialogs_live"`
	// Adoptions by the survivors (their counters).
	Adopted                        int64    `json:"adopted"`
	AdoptedRegistrations           int64    `json:"adopted_registrations"`
	Held                           int64    `json:"adoptions_held"`
	Raced                          int64    `json:"adoptions_raced"`
	AdoptP50MS                     float64  `json:"adopt_p50_ms"`
	AdoptP99MS                     float64  `json:"adopt_p99_ms"`
	AdoptMaxMS                     float64  `json:"adopt_max_ms"`
	HeldMaxMS                      float64  `json:"held_max_ms"`
	FailureToFirstAdoptionMS       *float64 `json:"failure_to_first_adoption_ms"`
	FailureToFirstInDialogAnswerMS *float64 `json:"failure_to_first_adopted_in_dialog_answer_ms"`
	FailureToFirstAdoptedByeMS     *float64 `json:"failure_to_first_adopted_bye_answered_ms"`
	FailureToLastAdoptedAnswerMS   *float64 `json:"failure_to_last_adopted_in_dialog_answer_ms"`
	VictimExitMS                   float64  `json:"victim_exit_ms"`

	// Kamailio's reroutes (failure_route), by method.
	Reroutes map[string]int `json:"reroutes"`

	Registrations      int      `json:"registrations"`
	RegistrationsKept  int      `json:"registrations_kept"`
	RegistrationErrors []string `json:"registration_errors,omitempty"`

	Nodes    map[string]nodeStats `json:"nodes"`
	Seconds  float64              `json:"seconds"`
	Problems []string             `json:"problems"`

	failedAt time.Time
}

func (r *result) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *result) addNode(name string, s nodeStats) {
	if r.Nodes == nil {
		r.Nodes = map[string]nodeStats{}
	}
	r.Nodes[name] = s
}

func (r *result) line() string {
	return fmt.Sprintf("sip[%s]: calls=%d ok=%d failed=%d failed_beyond_window=%d refused_at_setup=%d adopted=%d registrations_kept=%d/%d failure_to_first_adopted_bye_ms=%s adopt_p99_ms=%.1f setup_p50_ms=%.1f",
		r.Name, r.Calls, r.OK, r.Failed, r.FailedBeyondWindow, r.RefusedAtSetup, r.Adopted, r.RegistrationsKept, r.Registrations,
		fmtPtr(r.FailureToFirstAdoptedByeMS), r.AdoptP99MS, r.SetupP50MS)
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "none"
	}
	return strconv.FormatFloat(*p, 'f', 0, 64)
}

// report is e2e/out/sip.json.
type report struct {
	Drill              string    `json:"drill"`
	Setup              string    `json:"setup"`
	Calls              int       `json:"calls"`
	OK                 int       `json:"ok"`
	Failed             int       `json:"failed"`
	FailedBeyondWindow int       `json:"failed_beyond_window"`
	Adopted            int64     `json:"adopted"`
	RegistrationsKept  int       `json:"registrations_kept"`
	Registrations      int       `json:"registrations"`
	Passed             bool      `json:"passed"`
	Variants           []*result `json:"variants"`
}

func setupOf(hosts []string, port int) string {
	return fmt.Sprintf("processes on loopback: Kamailio %s:%d, sipnode %s (:%d), SIPp %s:%d, Cassandra %s:%d",
		proxyHost, sipPort, strings.Join(nodeHosts, ", "), sipPort, sippHost, sipPort, strings.Join(hosts, ","), port)
}

func (rep *report) total() {
	rep.Passed = len(rep.Variants) > 0
	for _, r := range rep.Variants {
		rep.Calls += r.Calls
		rep.OK += r.OK
		rep.Failed += r.Failed
		rep.FailedBeyondWindow += r.FailedBeyondWindow
		rep.Adopted += r.Adopted
		rep.RegistrationsKept += r.RegistrationsKept
		rep.Registrations += r.Registrations
		if len(r.Problems) > 0 {
			rep.Passed = false
		}
	}
}

func (rep *report) line() string {
	return fmt.Sprintf("sip: calls=%d ok=%d failed=%d failed_beyond_window=%d adopted=%d registrations_kept=%d",
		rep.Calls, rep.OK, rep.Failed, rep.FailedBeyondWindow, rep.Adopted, rep.RegistrationsKept)
}

// analyse reads SIPp's statistics, call log and error log, the nodes' logs
// and Kamailio's log, and fills r: counts, latencies, and each failed
// Call-ID checked against the rule.
func analyse(t *testing.T, r *result, v variant, sippDir, kamLog string, victim *proc, survivors []*proc) {
	// SIPp's own counts.
	stat, err := lastStats(filepath.Join(sippDir, "stat.csv"))
	if err != nil {
		r.problem("SIPp statistics: %v", err)
	}
	r.Calls, r.OK, r.Failed = stat["TotalCallCreated"], stat["SuccessfulCall(C)"], stat["FailedCall(C)"]
	if r.Calls != v.Calls {
		r.problem("SIPp created %d calls, want %d", r.Calls, v.Calls)
	}
	if r.OK+r.Failed != r.Calls {
		r.problem("SIPp: %d successful + %d failed != %d created", r.OK, r.Failed, r.Calls)
	}

	// Each call's steps, and SIPp's error for the failed ones.
	steps, byeRetries := callSteps(t, filepath.Join(sippDir, "calls.log"))
	errs := sippErrors(filepath.Join(sippDir, "errors.log"))

	// The nodes' logs.
	victimLog := readNodeLog(t, victim.log)
	if s, ok := victimLog.final(); ok {
		r.addNode(victim.name+" (failed)", s)
	}
	var survivorLogs []nodeLog
	for _, n := range survivors {
		survivorLogs = append(survivorLogs, readNodeLog(t, n.log))
	}
	createdElsewhere := map[string]bool{}
	refusedInvite := map[string]bool{}
	refused := func(e nodeEvent) bool { return e.Msg == "refused" && e.Method == "INVITE" && e.Status >= 500 }
	for _, e := range victimLog {
		if refused(e) {
			refusedInvite[e.CallID] = true
		}
	}
	var firstAdoption, firstAnswer, firstBye, lastAnswer *float64
	since := func(at time.Time) *float64 { x := ms(at.Sub(r.failedAt)); return &x }
	earliest := func(p **float64, at time.Time) {
		if x := since(at); *p == nil || *x < **p {
			*p = x
		}
	}
	for _, l := range survivorLogs {
		for _, e := range l {
			switch e.Msg {
			case "dialog created":
				createdElsewhere[e.CallID] = true
			case "refused":
				if refused(e) {
					refusedInvite[e.CallID] = true
				}
			case "adopted":
				if strings.HasPrefix(e.Session, "call:") {
					earliest(&firstAdoption, e.Time)
				}
			case "answered after adoption":
				earliest(&firstAnswer, e.Time)
				if x := since(e.Time); lastAnswer == nil || *x > *lastAnswer {
					lastAnswer = x
				}
				if e.Method == "BYE" {
					earliest(&firstBye, e.Time)
				}
			}
		}
	}
	r.FailureToFirstAdoptionMS, r.FailureToFirstInDialogAnswerMS, r.FailureToFirstAdoptedByeMS = firstAdoption, firstAnswer, firstBye
	r.FailureToLastAdoptedAnswerMS = lastAnswer

	// Dialogs the victim held at the failure.
	victimCreated := map[string]time.Time{}
	for _, e := range victimLog {
		if e.Msg == "dialog created" {
			victimCreated[e.CallID] = e.Time
		}
	}
	for cid, at := range victimCreated {
		done, ok := steps[cid]["done"]
		if at.Before(r.failedAt) && (!ok || done.After(r.failedAt)) {
			r.VictimDialogsLive++
		}
	}

	// Kamailio's reroutes.
	rerouted := reroutes(kamLog)
	r.Reroutes = map[string]int{}
	for _, rs := range rerouted {
		for _, m := range rs {
			r.Reroutes[m]++
		}
	}

	// The survivors' counters.
	var adopt, held []float64
	for name, s := range r.Nodes {
		if strings.HasSuffix(name, "(failed)") {
			continue
		}
		r.Adopted += s.AdoptedDialogs
		r.AdoptedRegistrations += s.AdoptedRegistrations
		r.Held += s.Held
		r.Raced += s.Raced
		adopt = append(adopt, s.AdoptMS...)
		held = append(held, s.HeldMS...)
	}
	r.AdoptP50MS, r.AdoptP99MS, r.AdoptMaxMS = pct(adopt, 0.5), pct(adopt, 0.99), pct(adopt, 1)
	r.HeldMaxMS = pct(held, 1)

	// Every failed Call-ID against the rule.
	r.FailedCalls = []failedCall{}
	r.ByeRetries = byeRetries
	var setup []float64
	for _, st := range steps {
		inv, ok1 := st["invite"]
		ans, ok2 := st["answered"]
		if ok1 && ok2 {
			setup = append(setup, ms(ans.Sub(inv)))
		}
	}
	r.SetupP50MS, r.SetupP99MS = pct(setup, 0.5), pct(setup, 0.99)
	for cid, st := range steps {
		if _, ok := st["done"]; ok {
			continue
		}
		fc := failedCall{CallID: cid, Reason: errs[cid], Rerouted: rerouted[cid]}
		inv, sent := st["invite"]
		answered, ok := st["answered"]
		if sent {
			fc.InviteBeforeFailureMS = ptr(ms(r.failedAt.Sub(inv)))
		}
		if at, ok := victimCreated[cid]; ok {
			fc.CommittedBeforeFailureMS = ptr(ms(r.failedAt.Sub(at)))
		}
		f := callFacts{CreatedElsewhere: createdElsewhere[cid], RefusedInvite: refusedInvite[cid],
			InviteRerouted: slices.Contains(fc.Rerouted, "INVITE")}
		if sent {
			f.Invite = &inv
		}
		if ok {
			f.Answered = &answered
		}
		if at, ok := victimCreated[cid]; ok {
			f.CommittedOnVictim = &at
		}
		fc.Explained = explain(f, r.failedAt, v.Signal == syscall.SIGKILL, window)
		switch fc.Explained {
		case "":
			r.FailedBeyondWindow++
		case explainedRefused:
			r.RefusedAtSetup++
		}
		r.FailedCalls = append(r.FailedCalls, fc)
	}
	slices.SortFunc(r.FailedCalls, func(a, b failedCall) int { return strings.Compare(a.CallID, b.CallID) })
	if len(r.FailedCalls) != r.Failed {
		r.problem("SIPp counted %d failed calls, its call log shows %d unfinished", r.Failed, len(r.FailedCalls))
	}

	if r.FailedBeyondWindow > 0 {
		r.problem("%d failed calls not explained by the rule (INVITE in flight and not retried, or dialog committed less than %s before the failure)", r.FailedBeyondWindow, window)
	}
	if r.SIPpExit != 0 && r.Failed == 0 {
		r.problem("SIPp exited %d with no failed call", r.SIPpExit)
	}
	if r.VictimDialogsLive > 0 && r.Adopted == 0 {
		r.problem("the failed node held %d dialogs and no survivor adopted any", r.VictimDialogsLive)
	}
	if r.RegistrationsKept != r.Registrations {
		r.problem("registrations kept %d of %d: %v", r.RegistrationsKept, r.Registrations, r.RegistrationErrors)
	}
	if r.Raced > 0 {
		r.problem("%d adoptions lost a race to another survivor (the proxy sent one dialog to two nodes)", r.Raced)
	}
}

// nodeEvent is one JSON log line of a node.
type nodeEvent struct {
	Time    time.Time       `json:"time"`
	Msg     string          `json:"msg"`
	CallID  string          `json:"call_id"`
	Session string          `json:"session"`
	Method  string          `json:"method"`
	Status  int             `json:"status"`
	Stats   json.RawMessage `json:"stats"`
}

type nodeLog []nodeEvent

func readNodeLog(t *testing.T, path string) nodeLog {
	f, err := os.Open(path)
	if err != nil {
		t.Errorf("node log: %v", err)
		return nil
	}
	defer f.Close()
	var l nodeLog
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e nodeEvent
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			l = append(l, e)
		}
	}
	return l
}

// final is the counters a node logged when it stopped gracefully.
func (l nodeLog) final() (nodeStats, bool) {
	for _, e := range l {
		if e.Msg == "sipnode stopped" && len(e.Stats) > 0 {
			var s nodeStats
			if json.Unmarshal(e.Stats, &s) == nil {
				return s, true
			}
		}
	}
	return nodeStats{}, false
}

func ptr(x float64) *float64 { return &x }
