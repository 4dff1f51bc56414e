package buffer

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// step advances the harness in steps of d, n times, letting the scheduler and
// the watchdog run at each.
func (h *harness) step(d time.Duration, n int) {
	for range n {
		h.advance(d)
	}
}

// While the store is down, unwritten changes age: once the oldest would outlive
// MaxWindow, Commit and End refuse with ErrOverloaded (applying nothing) instead
// of acknowledging changes that would wait longer still; once flushes catch up
// they are accepted again. Without MaxWindow the same outage refuses nothing.
func TestMaxWindowRefusesWhileFlushesCannotKeepUp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Delay: 100 * time.Millisecond, MaxWindow: 500 * time.Millisecond,
		RetryMin: 50 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	down := errors.New("store unreachable")
	h.setFail(func(*Snapshot) error { return down })
	h.commit("s1", Change{Key: "k", Value: []byte("1")})
	h.step(10*time.Millisecond, 40) // 400 ms: still under the bound
	if err := h.b.Commit("s2", Change{Key: "k", Value: []byte("2")}); err != nil {
		t.Fatalf("commit 400 ms into an outage, with a 500 ms bound: %v", err)
	}
	h.step(10*time.Millisecond, 15) // 550 ms: s1's change is older than the bound
	err := h.b.Commit("s3", Change{Key: "k", Value: []byte("3")})
	if !errors.Is(err, ErrOverloaded) || !strings.Contains(err.Error(), "MaxWindow") {
		t.Fatalf("commit past the window bound: %v, want ErrOverloaded", err)
	}
	if err := h.b.Commit("s1", Change{Key: "k", Value: []byte("newer")}); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("commit to the late session: %v", err)
	}
	if err := h.b.End("s2"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("end past the window bound: %v", err)
	}
	st := h.b.Stats()
	if !st.Overloaded || st.Overloads != 3 || st.OverloadTrips != 1 || st.PendingSessions != 2 {
		t.Fatalf("stats while overloaded: %+v", st)
	}
	h.setFail(nil) // the store is back
	h.step(10*time.Millisecond, 20)
	if err := h.b.Commit("s3", Change{Key: "k", Value: []byte("3")}); err != nil {
		t.Fatalf("commit after the backlog drained: %v", err)
	}
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]string{"s1": "1", "s2": "2", "s3": "3"} {
		if got := h.st.read(s)["k"]; got != want {
			t.Errorf("%s: k=%q, want %q (refused calls must apply nothing)", s, got, want)
		}
	}
	if st := h.b.Stats(); st.Overloaded || st.Overloads != 3 {
		t.Fatalf("stats after recovery: %+v", st)
	}
}

func TestNoWindowBoundRefusesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Delay: 100 * time.Millisecond, RetryMin: 50 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	h.setFail(func(*Snapshot) error { return errors.New("store unreachable") })
	h.commit("s1", Change{Key: "k", Value: []byte("1")})
	h.step(100*time.Millisecond, 30)
	if err := h.b.Commit("s2", Change{Key: "k", Value: []byte("2")}); err != nil {
		t.Fatalf("commit 3 s into an outage without a window bound: %v", err)
	}
	h.setFail(nil)
}

func TestMaxWindowValidated(t *testing.T) {
	t.Parallel()
	err := Config{Delay: 100 * time.Millisecond, MaxWindow: 100 * time.Millisecond}.Validate()
	if err == nil || !strings.Contains(err.Error(), "MaxWindow") || !strings.Contains(err.Error(), "Delay") {
		t.Fatalf("MaxWindow equal to Delay: %v", err)
	}
	if err := (Config{Delay: 100 * time.Millisecond, MaxWindow: time.Second}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// The flight the window bound predicts by leaves out what the FlushFunc
// reported as preparation (Snapshot.Prep: a new session's ownership record),
// which the next flush of that session does not repeat.
func TestWindowFlightLeavesOutPrep(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Delay: 100 * time.Millisecond, MaxWindow: 500 * time.Millisecond})
	t0 := h.clk.Now().Add(-400 * time.Millisecond)
	h.b.flew(0, t0, 350*time.Millisecond)
	if got := time.Duration(h.b.fams[0].window.flight()); got != 50*time.Millisecond {
		t.Fatalf("flight %v after a 400 ms call with 350 ms of preparation, want 50ms", got)
	}
	h.b.flew(0, t0, 0)
	if got := time.Duration(h.b.fams[0].window.flight()); got != 400*time.Millisecond {
		t.Fatalf("flight %v after a 400 ms call, want 400ms", got)
	}
}

// One slow flush trips the bound, but it is not remembered for long: once
// about a window has passed with the buffer empty and no slow call, commits
// are accepted again. (A second of memory kept a node refusing every commit
// for up to two seconds after a single slow flush.)
func TestWindowForgetsASlowFlushAfterAboutAWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Delay: 100 * time.Millisecond, MaxWindow: 350 * time.Millisecond})
	h.b.flew(0, h.clk.Now().Add(-300*time.Millisecond), 0) // one 300 ms call: 100 + 300 > 350
	h.step(10*time.Millisecond, 5)
	if err := h.b.Commit("s1", Change{Key: "k", Value: []byte("1")}); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("commit just after a 300 ms flush with a 350 ms bound: %v, want ErrOverloaded", err)
	}
	h.step(10*time.Millisecond, 70) // 700 ms: two spans of 350 ms
	if err := h.b.Commit("s1", Change{Key: "k", Value: []byte("1")}); err != nil {
		t.Fatalf("commit 700 ms after the only slow flush: %v", err)
	}
	if st := h.b.Stats(); st.OverloadTrips != 1 || st.Overloaded {
		t.Fatalf("stats: %+v, want one trip, lifted", st)
	}
}

// A family whose Delay is most of its bound (the demo's registrations: 1s
// under 1.25s) must also recover from one slow flush. The prediction is never
// below the Delay, so a refusal that lifted only under three quarters of the
// bound (0.9375s) never lifted: every commit of the family was refused for good.
func TestWindowRecoversWhenTheDelayIsMostOfTheBound(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Delay: time.Second, MaxWindow: 1250 * time.Millisecond})
	h.b.flew(0, h.clk.Now().Add(-300*time.Millisecond), 0) // one 300 ms call: 1s + 300 ms > 1.25s
	h.step(10*time.Millisecond, 5)
	if err := h.b.Commit("s1", Change{Key: "k", Value: []byte("1")}); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("commit just after a 300 ms flush with a 1s delay and a 1.25s bound: %v, want ErrOverloaded", err)
	}
	h.step(10*time.Millisecond, 200) // 2 s: two spans of 1 s, with no slow call
	if err := h.b.Commit("s1", Change{Key: "k", Value: []byte("1")}); err != nil {
		t.Fatalf("commit 2 s after the only slow flush: %v", err)
	}
	if st := h.b.Stats(); st.OverloadTrips != 1 || st.Overloaded {
		t.Fatalf("stats: %+v, want one trip, lifted", st)
	}
}

// The window bound is a prediction: a change accepted while flushes kept up
// can still land later than MaxWindow when the store stalls right after. Such
// a write is counted (Stats.LateWrites, per family too) and flagged
// (FlushEvent.Late), and a write that landed within the bound is not.
func TestWritesLandingPastTheBoundAreCounted(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		late = map[string]bool{}
	)
	h := newHarness(t, Config{Delay: 100 * time.Millisecond, MaxWindow: 500 * time.Millisecond,
		RetryMin: 50 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		OnFlush: func(e FlushEvent) {
			if e.Err == nil {
				mu.Lock()
				late[e.Session] = late[e.Session] || e.Late
				mu.Unlock()
			}
		}})
	down := errors.New("store unreachable")
	h.setFail(func(*Snapshot) error { return down })
	h.commit("s1", Change{Key: "k", Value: []byte("1")})
	h.step(10*time.Millisecond, 30)
	h.commit("s2", Change{Key: "k", Value: []byte("2")}) // 300 ms in: under the bound
	h.step(10*time.Millisecond, 30)                      // s1's change is 600 ms old
	h.setFail(nil)
	h.step(10*time.Millisecond, 10) // both land: s1 about 650 ms, s2 about 350 ms after their changes
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !late["s1"] || late["s2"] {
		t.Fatalf("late writes flagged: %v, want s1 alone", late)
	}
	if st := h.b.Stats(); st.LateWrites != 1 || st.Families[0].LateWrites != 1 {
		t.Fatalf("LateWrites %d (family %d), want 1", st.LateWrites, st.Families[0].LateWrites)
	}
}

// A session has one write in flight at a time: a change committed to a
// session whose write is on its way waits for it to land before its own
// write starts. With flights longer than the Delay, a change committed now
// may so wait two flights, and the bound must count both: flights of 200 ms
// under a 350 ms bound and a 100 ms Delay leave a change committed just
// after its session's write began 400 ms from durable (the prediction of the
// Delay plus one flight, 300 ms, accepted it, and such writes landed past the
// bound in a saturated run: holdover.flush.late).
func TestFlightsLongerThanTheDelayCountTwice(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Delay: 100 * time.Millisecond, MaxWindow: 350 * time.Millisecond})
	h.b.flew(0, h.clk.Now().Add(-200*time.Millisecond), 0) // one 200 ms call
	h.step(10*time.Millisecond, 2)
	if err := h.b.Commit("s1", Change{Key: "k", Value: []byte("1")}); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("commit after 200 ms flights with a 100 ms delay and a 350 ms bound: %v, want ErrOverloaded", err)
	}
	h2 := newHarness(t, Config{Delay: 100 * time.Millisecond, MaxWindow: 350 * time.Millisecond})
	h2.b.flew(0, h2.clk.Now().Add(-120*time.Millisecond), 0) // 120 + 120 < 350: accepted
	h2.step(10*time.Millisecond, 2)
	if err := h2.b.Commit("s1", Change{Key: "k", Value: []byte("1")}); err != nil {
		t.Fatalf("commit after 120 ms flights with a 350 ms bound: %v", err)
	}
}

// The watchdog's prediction stands until its next check, a tick later
// (MaxWindow / 20), and the oldest unwritten change ages meanwhile: a check
// that finds it 340 ms old under a 350 ms bound must refuse, for a change
// accepted before the next check would wait 357.5 ms or more. (Judged by its
// age at the check, such changes were accepted; in saturated runs the kill
// of a node then lost changes acknowledged 350 to 364 ms before it.)
func TestTheWindowIsJudgedAsItWillBeAtTheNextCheck(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Delay: 100 * time.Millisecond, MaxWindow: 350 * time.Millisecond,
		RetryMin: 50 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	h.setFail(func(*Snapshot) error { return errors.New("store unreachable") })
	h.commit("s1", Change{Key: "k", Value: []byte("1")})
	h.step(10*time.Millisecond, 34) // checks every 20 ms here: the last at 340 ms
	if age := h.b.Stats().OldestPendingAge; age >= 350*time.Millisecond {
		t.Fatalf("oldest unwritten change %v old: the test wants it within a tick under the bound", age)
	}
	if err := h.b.Commit("s2", Change{Key: "k", Value: []byte("2")}); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("commit when the oldest unwritten change is 340 ms old under a 350 ms bound checked every 17.5 ms: %v, want ErrOverloaded", err)
	}
	h.setFail(nil)
}

// A family whose bound is its Delay plus a little (1s under 1.04s) is checked
// often enough for the tick the prediction adds to fit that margin: steady
// commits to a fast store are never refused. (With the tick at a twentieth of
// the bound, 50 ms, a change at its due time was judged 1.05 s old and every
// commit of the family was refused once a delay.)
func TestATightBoundIsCheckedOftenEnough(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Delay: time.Second, MaxWindow: 1040 * time.Millisecond})
	for i := range 60 {
		if err := h.b.Commit("s1", Change{Key: fmt.Sprintf("k%d", i), Value: []byte("v")}); err != nil {
			t.Fatalf("commit %d to a fast store under a 1.04 s bound with a 1 s delay: %v", i, err)
		}
		h.step(10*time.Millisecond, 10)
	}
	if st := h.b.Stats(); st.OverloadTrips != 0 {
		t.Fatalf("%d trips with a fast store, want none", st.OverloadTrips)
	}
}

// A write under way counts as a flight at least as long as it has flown: at
// the onset of a stall, or after a refusal long enough to forget every ended
// flight, the ended writes say nothing of it, and the changes accepted then
// waited through it (a saturation probe lost changes so). With a 100 ms Delay
// under a 500 ms bound, a write stuck for 200 ms (its change 300 ms old, 325
// at the next check) predicts 525 ms; judged by its age alone, 325 ms, the
// commit was accepted. Grouped writes (GroupFlush) count the same, and the
// flight RecentFlight reports (which new sessions are admitted by) too.
func TestAWriteUnderWayCountsAsAFlight(t *testing.T) {
	t.Parallel()
	for _, grouped := range []bool{false, true} {
		t.Run(fmt.Sprint("grouped=", grouped), func(t *testing.T) {
			t.Parallel()
			h := newHarnessOpt(t, Config{Delay: 100 * time.Millisecond, MaxWindow: 500 * time.Millisecond}, grouped)
			h.block()
			h.commit("s1", put("k", "1"))
			if grouped {
				h.commit("s1b", put("k", "1"))
			}
			h.step(10*time.Millisecond, 20) // the write began at 100 ms and is stuck
			if n := h.ncalls(); n == 0 {
				t.Fatal("no write under way at 200 ms")
			}
			if err := h.b.Commit("s2", put("k", "2")); err != nil {
				t.Fatalf("commit with a write under way for 100 ms (predicted 325 ms under 500): %v", err)
			}
			h.step(10*time.Millisecond, 10)
			// New sessions are admitted by the flight the bound predicts with.
			if got := h.b.RecentFlight("s3"); got < 175*time.Millisecond {
				t.Errorf("RecentFlight %v with a write under way for 200 ms, want at least its flight at the last check", got)
			}
			err := h.b.Commit("s3", put("k", "3"))
			if !errors.Is(err, ErrOverloaded) {
				t.Fatalf("commit with a write under way for 200 ms (predicted 525 ms under 500): %v, want ErrOverloaded", err)
			}
			h.unblock()
			h.step(10*time.Millisecond, 120) // the stuck write is remembered for one to two spans of 500 ms
			if err := h.b.Commit("s3", put("k", "3")); err != nil {
				t.Fatalf("commit 1.2 s after the stuck write landed: %v", err)
			}
			if st := h.b.Stats(); st.OverloadTrips != 1 || st.Overloaded {
				t.Fatalf("stats: %+v, want one trip, lifted", st)
			}
		})
	}
}

// The write of a session not yet prepared (Config.Prepared: a new session,
// whose first write records its ownership) is not counted while under way, as
// its preparation is left out of the flights that ended (Snapshot.Prep): the
// age of its change still counts.
func TestAnUnpreparedWriteUnderWayIsNotAFlight(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Delay: 100 * time.Millisecond, MaxWindow: 500 * time.Millisecond,
		Prepared: func(session string) bool { return session != "new" }})
	h.block()
	h.commit("new", put("k", "1"))
	h.step(10*time.Millisecond, 30) // its write began at 100 ms and is stuck
	if err := h.b.Commit("old", put("k", "2")); err != nil {
		t.Fatalf("commit beside a new session's first write under way for 200 ms (its change 325 ms old at the next check): %v", err)
	}
	h.step(10*time.Millisecond, 20)
	if err := h.b.Commit("old", put("k", "3")); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("commit beside a change 525 ms old at the next check, over the 500 ms bound: %v, want ErrOverloaded", err)
	}
	h.unblock()
}
