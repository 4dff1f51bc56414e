package residency

import (
	"testing"
	"time"
)

// A lone admission that slid into the meter's previous bucket is still
// within its lead and counts as queued: rounding the previous bucket's share
// down counted it 0 as soon as a new bucket began, 100 ms into a 1s lead.
// Once two spans have passed it no longer counts.
func TestAdmitMeterCountsALoneAdmissionUntilItsLeadEnds(t *testing.T) {
	var a admitMeters
	a.add(900*time.Millisecond, time.Second) // the first bucket began at 0
	for _, at := range []time.Duration{950 * time.Millisecond, 1100 * time.Millisecond, 1800 * time.Millisecond} {
		if n := a.pending(at); n != 1 {
			t.Errorf("pending at %v after one admission at 900ms with a 1s lead: %d, want 1", at, n)
		}
	}
	if n := a.pending(2100 * time.Millisecond); n != 0 {
		t.Errorf("pending two spans on: %d, want 0", n)
	}
}
