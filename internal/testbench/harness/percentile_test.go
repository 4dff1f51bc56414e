package harness

import "testing"

// percentile claims nearest rank: the smallest value with at least p% of the
// values at or below it. For 160 values 1..160, p99 is the 159th (158.4 ->
// rank 159); 158 has only 98.75% at or below it. It rounded to the nearest
// rank, one low for about half the counts. Found by review.
func TestPercentileIsTheNearestRank(t *testing.T) {
	for _, n := range []int{160, 1060, 250, 100, 1000, 300, 1} {
		vs := make([]float64, n)
		for i := range vs {
			vs[i] = float64(i + 1)
		}
		got := percentile(vs, 99)
		// nearest rank = ceil(0.99 n)
		want := float64((99*n + 99) / 100)
		if got != want {
			t.Errorf("n=%d: percentile(1..n, 99) = %v, want nearest rank %v (only %.2f%% of values at or below %v)",
				n, got, want, 100*got/float64(n), got)
		}
	}
}
