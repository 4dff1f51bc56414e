package harness

import (
	"math"
	"sync"
	"testing"
	"time"
)

func TestParsePressure(t *testing.T) {
	got, ok := parsePressure("some avg10=7.79 avg60=20.05 avg300=35.11 total=435407257\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
	if !ok || got != 435407257*time.Microsecond {
		t.Fatalf("got %v %v", got, ok)
	}
	for _, bad := range []string{"", "full avg10=0.00 total=5\n", "some avg10=1.00 total=x\n", "some avg10=1.00\n"} {
		if d, ok := parsePressure(bad); ok {
			t.Errorf("%q parsed as %v", bad, d)
		}
	}
}

func TestSchedSince(t *testing.T) {
	before := readSched()
	if len(before.counts) == 0 {
		t.Fatal("the runtime does not report " + schedLatencies)
	}
	// Wake-ups to be counted: goroutines that block and are made runnable.
	var wg sync.WaitGroup
	ch := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range ch {
			}
		}()
	}
	for i := range 2000 {
		ch <- i
	}
	close(ch)
	wg.Wait()
	p99, maxMS := schedSince(before)
	if maxMS <= 0 || p99 <= 0 || p99 > maxMS {
		t.Fatalf("p99 %v ms, max %v ms", p99, maxMS)
	}
	// A synthetic histogram: 100 wake-ups in the interval, 98 under 1 ms,
	// one in [1, 2) ms, one in the open bucket from 4 ms.
	inf := math.Inf(1)
	b := []float64{0, 1e-3, 2e-3, 4e-3, inf}
	p99, maxMS = schedBetween(schedSnapshot{counts: []uint64{5, 0, 0, 0}, buckets: b},
		schedSnapshot{counts: []uint64{103, 1, 0, 1}, buckets: b})
	if p99 != 2 || maxMS != 4 {
		t.Fatalf("synthetic: p99 %v ms, max %v ms, want 2 and 4", p99, maxMS)
	}
	if p, m := schedBetween(schedSnapshot{counts: []uint64{5, 0, 0, 0}, buckets: b}, schedSnapshot{counts: []uint64{5, 0, 0, 0}, buckets: b}); p != 0 || m != 0 {
		t.Fatalf("empty interval: p99 %v, max %v", p, m)
	}
}
