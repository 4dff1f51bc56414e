package harness

import (
	"math"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// Stall evidence for the window run: how long this process's goroutines
// waited for a core, and how much of the time some task on the machine did.

const schedLatencies = "/sched/latencies:seconds"

// schedSnapshot is the Go runtime's cumulative histogram of the time
// goroutines spent runnable before running.
type schedSnapshot struct {
	counts  []uint64
	buckets []float64
}

func readSched() schedSnapshot {
	s := []metrics.Sample{{Name: schedLatencies}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return schedSnapshot{}
	}
	h := s[0].Value.Float64Histogram()
	return schedSnapshot{counts: append([]uint64(nil), h.Counts...), buckets: h.Buckets}
}

// schedSince returns the p99 and the largest scheduling latency, in
// milliseconds, of the goroutine wake-ups since before. Each is its bucket's
// upper bound (the lower one for the open last bucket): the runtime keeps a
// histogram, not samples.
func schedSince(before schedSnapshot) (p99, maxMS float64) {
	return schedBetween(before, readSched())
}

func schedBetween(before, now schedSnapshot) (p99, maxMS float64) {
	if len(now.counts) == 0 || len(before.counts) != len(now.counts) {
		return 0, 0
	}
	delta := make([]uint64, len(now.counts))
	var total uint64
	for i := range delta {
		delta[i] = now.counts[i] - before.counts[i]
		total += delta[i]
	}
	if total == 0 {
		return 0, 0
	}
	edge := func(i int) float64 {
		b := now.buckets[i+1]
		if math.IsInf(b, 1) {
			b = now.buckets[i]
		}
		return b * 1000
	}
	want := uint64(math.Ceil(0.99 * float64(total)))
	var seen uint64
	for i, c := range delta {
		seen += c
		if seen >= want && p99 == 0 {
			p99 = edge(i)
		}
		if c > 0 {
			maxMS = edge(i)
		}
	}
	return p99, maxMS
}

// cpuPressure returns the cumulative time some task on the machine waited
// for a CPU (Linux pressure stall information), false where the kernel does
// not report it.
func cpuPressure() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return 0, false
	}
	return parsePressure(string(b))
}

// parsePressure reads the "some" line's cumulative total (microseconds) of a
// /proc/pressure file.
func parsePressure(text string) (time.Duration, bool) {
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "some ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "total="); ok {
				us, err := strconv.ParseInt(v, 10, 64)
				if err != nil || us < 0 {
					return 0, false
				}
				return time.Duration(us) * time.Microsecond, true
			}
		}
	}
	return 0, false
}
