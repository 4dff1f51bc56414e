package sip

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file holds the drill's rule for failed calls and the readers of the
// tools' output. It carries no build tag, so `go test ./...` runs their unit
// tests (rule_test.go) without starting anything.

// Explanations of a failed call (failedCall.Explained).
const (
	explainedWindow   = "committed_within_window"
	explainedInFlight = "invite_in_flight_not_retried"
	explainedRefused  = "refused_at_setup"
)

// callFacts is what the drill knows about one failed call.
type callFacts struct {
	Invite            *time.Time // SIPp sent the INVITE
	Answered          *time.Time // SIPp received the 200
	CommittedOnVictim *time.Time // the failed node committed the dialog
	CreatedElsewhere  bool       // a survivor committed a dialog for it
	RefusedInvite     bool       // a node answered the INVITE 5xx (overloaded, fenced)
	InviteRerouted    bool       // Kamailio sent the INVITE to another node
}

// explain checks a failed call against the rule: it may fail only if its
// dialog was committed on the killed node less than window before the
// failure (killed: the failure was a SIGKILL; a drain loses nothing), or
// its INVITE was in flight at the failure (sent, not answered) and not
// retried on another node. A call whose INVITE a node refused under overload
// is told so (refused_at_setup). "" means not explained.
func explain(f callFacts, failedAt time.Time, killed bool, window time.Duration) string {
	if f.CommittedOnVictim != nil {
		age := failedAt.Sub(*f.CommittedOnVictim)
		if killed && age >= 0 && age < window {
			return explainedWindow
		}
		return ""
	}
	if f.RefusedInvite && !f.CreatedElsewhere {
		return explainedRefused
	}
	inFlight := f.Invite != nil && !f.Invite.After(failedAt) && (f.Answered == nil || f.Answered.After(failedAt))
	if inFlight && !f.CreatedElsewhere && !f.InviteRerouted {
		return explainedInFlight
	}
	return ""
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func pct(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// lastStats returns the last row of SIPp's -trace_stat file by column.
func lastStats(path string) (map[string]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return nil, fmt.Errorf("%s: no data row", path)
	}
	head, last := strings.Split(lines[0], ";"), strings.Split(lines[len(lines)-1], ";")
	m := map[string]int{}
	for i, h := range head {
		if i < len(last) {
			if n, err := strconv.Atoi(strings.TrimSpace(last[i])); err == nil {
				m[h] = n
			}
		}
	}
	return m, nil
}

// callSteps reads the scenario's log lines "<call-id> <step> <s>.000000.<us>.000000".
// It also returns how many BYEs were sent again after a 5xx.
func callSteps(t *testing.T, path string) (map[string]map[string]time.Time, int) {
	steps := map[string]map[string]time.Time{}
	retries := 0
	f, err := os.Open(path)
	if err != nil {
		t.Errorf("SIPp call log: %v", err)
		return steps, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3 {
			continue
		}
		parts := strings.Split(fs[2], ".")
		if len(parts) < 3 {
			continue
		}
		s, err1 := strconv.ParseInt(parts[0], 10, 64)
		us, err2 := strconv.ParseInt(parts[2], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if steps[fs[0]] == nil {
			steps[fs[0]] = map[string]time.Time{}
		}
		if _, again := steps[fs[0]][fs[1]]; again && fs[1] == "bye" {
			retries++
			continue // keep the first BYE's time
		}
		steps[fs[0]][fs[1]] = time.Unix(s, us*1000)
	}
	return steps, retries
}

var sippCallID = regexp.MustCompile(`Call-I[dD][: ]+'?([^'\s]+)'?`)

// sippErrors maps each Call-ID in SIPp's error log to its first error line.
func sippErrors(path string) map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		m := sippCallID.FindStringSubmatch(line)
		if m == nil || out[m[1]] != "" {
			continue
		}
		if _, rest, ok := strings.Cut(line, ": "); ok {
			line = rest
		}
		if len(line) > 240 {
			line = line[:240]
		}
		out[m[1]] = strings.TrimSpace(line)
	}
	return out
}

var rerouteLine = regexp.MustCompile(`holdover-reroute method=(\S+) call_id=(\S+)`)

// reroutes maps each Call-ID Kamailio rerouted to the methods rerouted.
func reroutes(path string) map[string][]string {
	out := map[string][]string{}
	b, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	for _, m := range rerouteLine.FindAllStringSubmatch(string(b), -1) {
		out[m[2]] = append(out[m[2]], m[1])
	}
	return out
}
