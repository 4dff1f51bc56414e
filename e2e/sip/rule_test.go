package sip

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestExplainFailedCalls(t *testing.T) {
	fail := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { x := fail.Add(d); return &x }
	const w = 350 * time.Millisecond
	for _, c := range []struct {
		name   string
		f      callFacts
		killed bool
		want   string
	}{
		{"committed 100 ms before the kill", callFacts{Invite: at(-101 * time.Millisecond), Answered: at(-99 * time.Millisecond), CommittedOnVictim: at(-100 * time.Millisecond)}, true, explainedWindow},
		{"committed 2 s before the kill", callFacts{Invite: at(-2 * time.Second), Answered: at(-2 * time.Second), CommittedOnVictim: at(-2 * time.Second)}, true, ""},
		{"committed 100 ms before a drain", callFacts{Invite: at(-100 * time.Millisecond), CommittedOnVictim: at(-100 * time.Millisecond)}, false, ""},
		{"INVITE in flight, not retried", callFacts{Invite: at(-10 * time.Millisecond)}, true, explainedInFlight},
		{"INVITE in flight, rerouted", callFacts{Invite: at(-10 * time.Millisecond), InviteRerouted: true}, true, ""},
		{"INVITE in flight, taken by a survivor", callFacts{Invite: at(-10 * time.Millisecond), CreatedElsewhere: true}, true, ""},
		{"INVITE sent after the kill", callFacts{Invite: at(time.Second)}, true, ""},
		{"answered before the kill on a survivor", callFacts{Invite: at(-3 * time.Second), Answered: at(-3 * time.Second), CreatedElsewhere: true}, true, ""},
		{"refused under overload", callFacts{Invite: at(5 * time.Second), RefusedInvite: true}, true, explainedRefused},
	} {
		if got := explain(c.f, fail, c.killed, w); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func write(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The readers parse what SIPp 3.6.1 and Kamailio 5.6.3 wrote in a run.
func TestReadersParseTheToolsOutput(t *testing.T) {
	steps, retries := callSteps(t, write(t, "calls.log", ""+
		"1-15250@127.0.0.35 invite 1795642529.000000.372269.000000\n"+
		"1-15250@127.0.0.35 answered 1795642529.000000.372844.000000\n"+
		"1-15250@127.0.0.35 bye 1795642535.000000.000001.000000\n"+
		"1-15250@127.0.0.35 bye 1795642536.000000.000001.000000\n"+
		"1-15250@127.0.0.35 done 1795642536.000000.100000.000000\n"))
	s := steps["1-15250@127.0.0.35"]
	if got := ms(s["answered"].Sub(s["invite"])); got != 0.575 || retries != 1 || s["bye"].Unix() != 1795642535 {
		t.Fatalf("set-up %v ms, retries %d, bye %v", got, retries, s["bye"])
	}
	errs := sippErrors(write(t, "errors.log", "2026-11-25\t21:35:20.092293\t1795642520.092293: Aborting call on unexpected message for Call-Id '1-15185@127.0.0.35': while expecting '200' (index 8), received 'SIP/2.0 481 Call/Transaction Does Not Exist\n"))
	if e := errs["1-15185@127.0.0.35"]; e == "" {
		t.Fatalf("no error for the Call-ID in %v", errs)
	}
	rr := reroutes(write(t, "kamailio.log", " 3(15130) NOTICE: <script>: holdover-reroute method=BYE call_id=6-15277@127.0.0.35 from=sip:127.0.0.32:5060 to=sip:127.0.0.33:5060 timeout=1 draining=0\n"))
	if len(rr["6-15277@127.0.0.35"]) != 1 || rr["6-15277@127.0.0.35"][0] != "BYE" {
		t.Fatalf("reroutes %v", rr)
	}
	st, err := lastStats(write(t, "stat.csv", "TotalCallCreated;SuccessfulCall(C);FailedCall(C);\n1;0;0;\n240;238;2;\n"))
	if err != nil || st["TotalCallCreated"] != 240 || st["SuccessfulCall(C)"] != 238 || st["FailedCall(C)"] != 2 {
		t.Fatalf("stats %v, %v", st, err)
	}
	if p := pct([]float64{5, 1, 3, 2, 4}, 0.5); p != 3 {
		t.Fatalf("median %v", p)
	}
}
