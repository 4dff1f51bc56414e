package loadgen

import (
	"fmt"
	"time"
)

// Report is what a Run measured. Counts of sessions are sessions; counts of
// events are events.
type Report struct {
	// Sessions is the number of sessions driven.
	Sessions int
	// Sent counts events sent; Acknowledged those a node answered 200.
	Sent, Acknowledged int64
	// EventP50Ms and EventP99Ms are acknowledged events' latencies, in ms.
	EventP50Ms, EventP99Ms float64
	// EventsPerSec is Acknowledged over Elapsed.
	EventsPerSec float64
	// EventsPerSecBeforeFailure is the events acknowledged before the first
	// node failed over the time to then (EventsPerSec when none failed): the
	// rate the nodes sustained with all of them up.
	EventsPerSecBeforeFailure float64
	// Saturated counts events the rate called for but not sent because
	// every session picked already had an event in flight, or because the
	// dispatcher fell more than 100ms behind (a stalled machine).
	Saturated int64
	// EventAdoptions counts event replies with adopted=true (a node adopted
	// the session on that event rather than through a redirect's GET).
	EventAdoptions int64

	// Failed names the nodes failed or redirected away from.
	Failed []string
	// Redirected counts the sessions of failed nodes sent to survivors.
	Redirected int
	// Adopted counts redirected sessions a survivor restored (200 to GET
	// ?adopt=true).
	Adopted int
	// NotFound counts redirected sessions a survivor did not find (404):
	// nothing of them was durable yet. Only a loss if LostBeyondWindow says so.
	NotFound int
	// Unrestored counts redirected sessions that neither a survivor restored
	// nor found absent within AdoptTimeout; they took no further load.
	Unrestored int
	// LostBeyondWindow counts acknowledged events lost although acknowledged
	// more than the window before the failure (or lost by a live node). The
	// product promises 0.
	LostBeyondWindow int64
	// LostWithinWindow counts acknowledged events lost inside the window.
	LostWithinWindow int64
	// Corrupt counts sessions whose restored or returned state was not the
	// model's state at the returned version.
	Corrupt int
	// FinalChecked counts sessions read back at the end; FinalMismatch those
	// whose version or state differed from the model.
	FinalChecked, FinalMismatch int
	// AdoptP50Ms and AdoptP99Ms are the latencies of successful adopting
	// GETs, in ms (each request alone, without the wait for the lease).
	AdoptP50Ms, AdoptP99Ms float64
	// LeaseWait is the time from the failure to the first successful
	// adoption: mostly the failed node's lease running out.
	LeaseWait time.Duration
	// AdoptRetries counts adopting GETs answered 409 naming the failed node
	// (its lease still live) and retried.
	AdoptRetries int64
	// FailoverP50Ms, FailoverP99Ms and FailoverMaxMs are the failover times
	// of the redirected sessions, in ms: from the failure (with a Failure,
	// from when its Fail returned: the node was down) to the first answer
	// a survivor gave for the session (its restored state, or 404); for an
	// Unrestored session, to when the redirect gave up on it (a lower bound).
	// Their floor is the time the failed node's lease still had to run.
	FailoverP50Ms, FailoverP99Ms, FailoverMaxMs float64
	// Window is the durability window the check used (flush delay +
	// allowance) for the sessions of no family; Families has each family's.
	Window time.Duration
	// Families breaks the sessions, acknowledgements and losses down by
	// family (Config.Families): the sessions of no family first (Name ""),
	// then each family in Config.Families's order. Nil without families.
	Families []FamilyReport
	// Errors counts failed requests by kind: "http_<status>", "timeout",
	// "transport", "to_failed_node" (requests to a node after it failed),
	// "version_mismatch" (a node's version differed from the model's),
	// "adopt_<kind>" (failed adopting GETs other than lease waits).
	Errors map[string]int64
	// Elapsed is the length of the run.
	Elapsed time.Duration
}

// OK reports whether the run proved what the product promises: nothing lost
// beyond the window, nothing corrupt, every redirected session accounted for,
// and every session read back equal to the model.
func (r Report) OK() bool {
	return r.LostBeyondWindow == 0 && r.Corrupt == 0 && r.Unrestored == 0 && r.FinalMismatch == 0
}

func (r Report) String() string {
	return fmt.Sprintf("sessions=%d sent=%d acknowledged=%d events/s=%.0f events/s_before_failure=%.0f event_p50_ms=%.1f event_p99_ms=%.1f saturated=%d "+
		"failed=%v redirected=%d adopted=%d not_found=%d unrestored=%d lost_beyond_window=%d lost_within_window=%d corrupt=%d "+
		"final_checked=%d final_mismatch=%d adopt_p50_ms=%.1f adopt_p99_ms=%.1f lease_wait_ms=%.0f adopt_retries=%d failover_p50_ms=%.0f failover_p99_ms=%.0f failover_max_ms=%.0f window_ms=%.0f errors=%s elapsed=%v%s",
		r.Sessions, r.Sent, r.Acknowledged, r.EventsPerSec, r.EventsPerSecBeforeFailure, r.EventP50Ms, r.EventP99Ms, r.Saturated,
		r.Failed, r.Redirected, r.Adopted, r.NotFound, r.Unrestored, r.LostBeyondWindow, r.LostWithinWindow, r.Corrupt,
		r.FinalChecked, r.FinalMismatch, r.AdoptP50Ms, r.AdoptP99Ms, ms(r.LeaseWait), r.AdoptRetries, r.FailoverP50Ms, r.FailoverP99Ms, r.FailoverMaxMs, ms(r.Window),
		FormatCounts(r.Errors), r.Elapsed.Round(time.Millisecond), formatFamilies(r.Families))
}
