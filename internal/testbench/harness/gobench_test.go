package harness

import (
	"strings"
	"testing"
)

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
BenchmarkCommitUpdate-2         	50000000	        24.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkCommitUpdate-2         	50000000	        22.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkCommitUpdate-2         	50000000	        30.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkBaselineMapUpdate-2    	60000000	        20.5 ns/op	       0 B/op	       0 allocs/op
BenchmarkPendingKeyOverhead-2   	       1	  123 ns/op	        48.00 overhead-B/key
PASS`
	g, err := ParseGoBench(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if v := g["BenchmarkCommitUpdate"]["ns/op"]; v != 24 {
		t.Errorf("median ns/op = %v, want 24", v)
	}
	if v := g["BenchmarkBaselineMapUpdate"]["ns/op"]; v != 20.5 {
		t.Errorf("baseline = %v", v)
	}
	if v := g["BenchmarkPendingKeyOverhead"]["overhead-B/key"]; v != 48 {
		t.Errorf("overhead = %v", v)
	}
	if _, err := ParseGoBench(strings.NewReader("no results")); err == nil {
		t.Error("empty input accepted")
	}
	if p := percentile([]float64{5, 1, 4, 2, 3}, 99); p != 5 {
		t.Errorf("p99 = %v", p)
	}
	if p := percentile([]float64{5, 1, 4, 2, 3}, 50); p != 3 {
		t.Errorf("p50 = %v", p)
	}
}
