package loadgen

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// histogram records durations in log-spaced buckets 1% wide, from 1µs to
// about 17 minutes, so quantiles are exact to 1% in constant memory.
type histogram struct {
	counts []uint64
	n      uint64
}

const (
	histMin    = float64(time.Microsecond)
	histGrowth = 1.01
)

var histBuckets = int(math.Ceil(math.Log(float64(1000*time.Second)/histMin)/math.Log(histGrowth))) + 1

func (h *histogram) record(d time.Duration) {
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	i := 0
	if f := float64(d); f > histMin {
		i = min(int(math.Log(f/histMin)/math.Log(histGrowth))+1, histBuckets-1)
	}
	h.counts[i]++
	h.n++
}

// quantile returns the q-quantile (0..1), the upper bound of its bucket; 0
// when empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			if i == 0 {
				return time.Duration(histMin)
			}
			return time.Duration(histMin * math.Pow(histGrowth, float64(i)))
		}
	}
	return time.Duration(histMin * math.Pow(histGrowth, float64(histBuckets-1)))
}

func (h *histogram) reset() { clear(h.counts); h.n = 0 }

// samples records durations exactly, for a figure judged against its goal to
// the millisecond: the failover times, one per redirected session (a few
// thousand at most). A histogram's quantile, its bucket's upper bound, can sit
// up to 1% above every value in the bucket: 23 ms at a 2.3 s goal.
type samples []time.Duration

func (s *samples) record(d time.Duration) { *s = append(*s, d) }

// quantile returns the q-quantile (0..1) by nearest rank, the smallest value
// with at least q of them at or below it; 0 when empty.
func (s samples) quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(s))
	rank := max(int(math.Ceil(q*float64(len(sorted)))), 1)
	return sorted[min(rank, len(sorted))-1]
}

// max returns the largest value; 0 when empty.
func (s samples) max() time.Duration {
	if len(s) == 0 {
		return 0
	}
	return slices.Max(s)
}

// ms renders d in milliseconds with one decimal.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e5) / 10 }

// FormatCounts renders a counter map as "k:v,k:v" in key order, or "none".
func FormatCounts[V int | int64](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s:%d", k, m[k])
	}
	return b.String()
}
