package adapter

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The sentence in one variable: registrations flush every 5 s and
// live an hour, calls flush every 50 ms, settings are shared.
func TestFamiliesFromOneVariable(t *testing.T) {
	c, err := configFromEnviron(map[string]string{
		"HOLDOVER_FAMILIES": "reg:delay=5s,ttl=1h;call:delay=50ms;settings:shared",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Families{
		{Name: "reg", FlushDelay: 5 * time.Second, StateTTL: time.Hour},
		{Name: "call", FlushDelay: 50 * time.Millisecond},
		{Name: "settings", Shared: true},
	}
	if len(c.Families) != len(want) {
		t.Fatalf("families = %+v, want %+v", c.Families, want)
	}
	for i := range want {
		if c.Families[i] != want[i] {
			t.Errorf("family %d = %+v, want %+v", i, c.Families[i], want[i])
		}
	}
	// String writes the variable's syntax back, and it parses to the same.
	var again Families
	if err := again.UnmarshalText([]byte(c.Families.String())); err != nil || again.String() != c.Families.String() {
		t.Fatalf("round trip of %q: %q, %v", c.Families.String(), again.String(), err)
	}
	if got := c.Families.String(); got != "reg:delay=5s,ttl=1h;call:delay=50ms;settings:shared" {
		t.Errorf("String = %q", got)
	}
}

// Every bad entry is reported at once, naming the family and the option,
// whether it does not parse or is out of range.
func TestFamiliesReportEveryProblemAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        []string
	}{
		{"syntax", "reg:delay=5x,ttl=1h,window=soon;queue:dealy=10ms;settings:shared=yes;big:max=lots", []string{
			`family "reg": delay "5x" is not a duration`,
			`family "reg": window "soon" is not a duration`,
			`family "queue": unknown option "dealy"`,
			`family "settings": shared takes no value`,
			`family "big": max "lots" is not a byte size`,
		}},
		{"twice", "reg:delay=5s,delay=50ms;settings:shared,shared", []string{
			`family "reg": option delay given twice`,
			`family "settings": option shared given twice`,
		}},
		{"ranges", "reg:delay=2h,ttl=1500ms;call:refresh=1s;settings:shared,refresh=10ms;reg:delay=1s;bad name:delay=1s;tiny:max=10B", []string{
			`family "reg": delay must be between 1ms and 1h, got 2h`,
			`family "reg": ttl must be whole seconds`,
			`family "call": refresh is only for shared families`,
			`family "settings": refresh must be between 100ms and 1h, got 10ms`,
			`family "reg": listed twice`,
			`entry 5: family name "bad name" must be 1..32 bytes`,
			`family "tiny": max must be between 1KiB and 1GiB, got 10B`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := configFromEnviron(map[string]string{"HOLDOVER_FAMILIES": tc.value, "HOLDOVER_FLUSH_DELAY": "0s"})
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, "HOLDOVER_FAMILIES: "+w) {
					t.Errorf("missing %q in:\n%s", w, msg)
				}
			}
			// The other variable's problem is reported beside them.
			if !strings.Contains(msg, "HOLDOVER_FLUSH_DELAY") {
				t.Errorf("the flush delay's problem is missing:\n%s", msg)
			}
		})
	}
}

// A family's largest session must fit in the buffer its sessions wait in:
// HOLDOVER_MAX_PENDING_BYTES, and at most 64MiB for a shared family.
// Before, such a max passed validation and Open failed after connecting,
// with the buffer's own wording, naming neither variable.
func TestFamilyMaxFitsItsBuffer(t *testing.T) {
	_, err := configFromEnviron(map[string]string{"HOLDOVER_FAMILIES": "reg:max=512MiB;settings:shared,max=128MiB"})
	for _, w := range []string{
		`HOLDOVER_FAMILIES: family "reg": max must be at most 256MiB, HOLDOVER_MAX_PENDING_BYTES, got 512MiB`,
		`HOLDOVER_FAMILIES: family "settings": max must be at most 64MiB, the cap of the shared families' buffer, got 128MiB`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in: %v", w, err)
		}
	}
	_, err = configFromEnviron(map[string]string{"HOLDOVER_FAMILIES": "reg:max=2MiB;settings:shared,max=2MiB", "HOLDOVER_MAX_PENDING_BYTES": "1MiB"})
	if err == nil || !strings.Contains(err.Error(), `family "reg": max must be at most 1MiB, HOLDOVER_MAX_PENDING_BYTES, got 2MiB`) ||
		!strings.Contains(err.Error(), `family "settings": max must be at most 1MiB, HOLDOVER_MAX_PENDING_BYTES, got 2MiB`) {
		t.Errorf("under a 1MiB cap: %v", err)
	}
	if _, err := configFromEnviron(map[string]string{"HOLDOVER_FAMILIES": "reg:max=256MiB;settings:shared,max=64MiB"}); err != nil {
		t.Errorf("families at their caps: %v", err)
	}
}

// A set window bound must exceed the delay of every family without a
// window of its own, and a family's window its delay.
func TestFamilyDelayUnderTheWindowBound(t *testing.T) {
	_, err := configFromEnviron(map[string]string{"HOLDOVER_FAMILIES": "reg:delay=5s;call:delay=50ms,window=40ms", "HOLDOVER_MAX_WINDOW": "2s"})
	if err == nil || !strings.Contains(err.Error(), `family "reg": delay 5s must be below HOLDOVER_MAX_WINDOW (2s)`) ||
		!strings.Contains(err.Error(), `family "call": window must be above its delay (50ms) and at most 24h, got 40ms`) {
		t.Fatalf("err = %v", err)
	}
	c, err := configFromEnviron(map[string]string{"HOLDOVER_FAMILIES": "reg:delay=5s,window=6s;call:delay=50ms", "HOLDOVER_MAX_WINDOW": "350ms"})
	if err != nil {
		t.Fatalf("a family with a window of its own: %v", err)
	}
	for i, want := range []time.Duration{6 * time.Second, 350 * time.Millisecond} {
		if got := c.familyWindow(c.Families[i]); got != want {
			t.Errorf("window of %s = %v, want %v", c.Families[i].Name, got, want)
		}
	}
	c, err = configFromEnviron(map[string]string{"HOLDOVER_FAMILIES": "reg:delay=5s;call:delay=10ms"})
	if err != nil {
		t.Fatalf("with the bound derived per family: %v", err)
	}
	for i, want := range []time.Duration{50 * time.Second, time.Second} {
		if got := c.familyWindow(c.Families[i]); got != want {
			t.Errorf("derived window of %s = %v, want %v", c.Families[i].Name, got, want)
		}
	}
}

// A session is in the family named by its ID up to the first ':', never in
// one whose name only starts it.
func TestFamilyOfASession(t *testing.T) {
	tab := newFamilyTable(Families{{Name: "reg"}, {Name: "settings", Shared: true}})
	for session, want := range map[string]string{
		"reg:alice":          "reg",
		"reg:":               "reg",
		"regular:42":         "",
		"reg":                "",
		"alice":              "",
		":reg":               "",
		"settings:codecs:v2": "settings",
	} {
		got := ""
		if f := tab.of(session); f != nil {
			got = f.Name
		}
		if got != want {
			t.Errorf("family of %q = %q, want %q", session, got, want)
		}
	}
	if f := tab.of("settings:x"); f == nil || f.Refresh != DefaultSharedRefresh {
		t.Errorf("a shared family without refresh= refreshes every %v, want %v", f.Refresh, DefaultSharedRefresh)
	}
	var none *familyTable
	if none.of("reg:alice") != nil {
		t.Error("no families configured, yet a family was found")
	}
}

// A new session may wait for its ownership record half of what its own
// family's window leaves after its own delay: a 60 ms call family is not
// judged by the default family's 450 ms.
func TestCreationBudgetIsTheFamilys(t *testing.T) {
	c, err := configFromEnviron(map[string]string{
		"HOLDOVER_FLUSH_DELAY": "100ms",
		"HOLDOVER_FAMILIES":    "call:delay=10ms,window=60ms;reg:delay=1s,window=1250ms;bulk:delay=10ms;slow:window=3s",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{
		"":     450 * time.Millisecond,  // (1s, 10 × the delay at least 1s) − 100ms, halved
		"call": 25 * time.Millisecond,   // (60ms − 10ms) / 2
		"reg":  125 * time.Millisecond,  // (1.25s − 1s) / 2
		"bulk": 495 * time.Millisecond,  // its window is 10 × 10ms, at least 1s
		"slow": 1450 * time.Millisecond, // (3s − the default 100ms) / 2
	}
	got := map[string]time.Duration{"": c.creationBudget(Family{})}
	for _, f := range c.Families {
		got[f.Name] = c.creationBudget(f)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("family %q: creation budget %v, want %v", name, got[name], w)
		}
	}
	// What residency gets: the family's budget by session, the default
	// family's for a session of none, while writes are fast, and no lead
	// (recordings start on admission).
	fast := func(string) time.Duration { return 0 }
	of := c.admissionOf(newFamilyTable(c.Families), fast)
	for session, w := range map[string][2]time.Duration{
		"call:c1": {want["call"], 0},
		"reg:r1":  {want["reg"], 0},
		"slow:s1": {want["slow"], 0},
		"plain":   {want[""], 0},
	} {
		if b, l := of(session); b != w[0] || l != w[1] {
			t.Errorf("admissionOf(%q) = %v, %v; want %v, %v", session, b, l, w[0], w[1])
		}
	}
	if b, l := (Config{FlushDelay: 100 * time.Millisecond}).admissionOf(nil, fast)("plain"); b != 450*time.Millisecond || l != 0 {
		t.Errorf("admissionOf without families = %v, %v; want 450ms, 0", b, l)
	}
}

// A new session admitted now is recorded while its first changes wait for
// their delay and written once both are done, a flight later; a change
// committed to it after that write was taken (a delay after the first
// changes at the earliest) lands one flight after it: slow writes leave its
// creation less of the window bound. With a 350 ms bound and a 100 ms delay
// the budget is 125 ms (half of what the bound leaves after the delay) while
// writes take up to 160 ms, 350 + 100 − 2 × 200 = 50 ms when they take
// 200 ms, and the least there is (never 0, which residency reads as no
// limit) when they take 225 ms or more. (The fixed 125 ms admitted new
// sessions whose first writes landed past the bound in a saturated run,
// when the recording started only after the delay.)
func TestCreationBudgetLeavesRoomForTheWrites(t *testing.T) {
	c := Config{FlushDelay: 100 * time.Millisecond, MaxWindow: 350 * time.Millisecond}
	for flight, want := range map[time.Duration]time.Duration{
		0:                      125 * time.Millisecond,
		160 * time.Millisecond: 125 * time.Millisecond,
		175 * time.Millisecond: 100 * time.Millisecond,
		200 * time.Millisecond: 50 * time.Millisecond,
		225 * time.Millisecond: time.Nanosecond,
		time.Second:            time.Nanosecond,
	} {
		of := c.admissionOf(nil, func(string) time.Duration { return flight })
		if b, l := of("s1"); b != want || l != 0 {
			t.Errorf("flights of %v: budget %v, lead %v; want %v, 0", flight, b, l, want)
		}
	}
}
