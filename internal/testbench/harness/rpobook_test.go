package harness

import (
	"errors"
	"testing"
	"time"

	"github.com/holdover/holdover/adapter"
)

// The window step's figures count the writes that finished during the load:
// not the final Flush's, which starts everything pending at once (its burst
// landed on the flight p99's rank, loosening the bound, and its writes were
// taken for the worst window), and not failed attempts. Found by review.
func TestTheWindowFiguresCountTheLoadsWritesOnly(t *testing.T) {
	b := &rpoBook{landed: map[string]time.Time{}}
	b.reset()
	now := time.Now()
	const delay = 100.0
	for i := range 100 { // the load: 5 ms flights, started 2 ms late
		b.add(adapter.FlushEvent{Session: "s", Duration: 5 * time.Millisecond, Lag: 107 * time.Millisecond}, now.Add(time.Duration(i)*time.Second))
	}
	b.add(adapter.FlushEvent{Session: "s", Duration: time.Second, Lag: 2 * time.Second, Err: errors.New("timeout")}, now)
	if ran := b.freeze(); ran != 100 {
		t.Fatalf("freeze: %d writes, want the load's 100", ran)
	}
	for range 5 { // the final Flush: long flights, old changes
		b.add(adapter.FlushEvent{Session: "f", Duration: 50 * time.Millisecond, Lag: 400 * time.Millisecond}, now)
	}
	var res RPOResult
	_, p99, pmax, _, _, _ := b.figures(&res, delay)
	if p99 != 5 || pmax != 5 {
		t.Errorf("flight p99 %v, max %v: want the load's 5 ms", p99, pmax)
	}
	if res.WorstFlightMS != 5 || res.WorstLateMS != 2 {
		t.Errorf("worst write: flew %v ms, started %v ms late; want the load's 5 and 2", res.WorstFlightMS, res.WorstLateMS)
	}
	if res.FlushStartLateMaxMS != 2 {
		t.Errorf("flush start late max %v ms, want 2", res.FlushStartLateMaxMS)
	}
}

// The anchors' claims use the serial consistency the adapter sends by
// default, so that the floors measure the same claim.
func TestTheAnchorsClaimAtTheAdaptersSerialConsistency(t *testing.T) {
	if got, want := anchorSerial.String(), adapter.DefaultConfig().SerialConsistency; got != want {
		t.Fatalf("anchors claim at %s, the adapter at %s", got, want)
	}
	if got := (&Env{}).cluster().SerialConsistency; got != anchorSerial {
		t.Fatalf("the anchors' cluster claims at %v, want %v", got, anchorSerial)
	}
}
