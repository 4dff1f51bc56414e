package harness

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// GoBench holds the medians of `go test -bench -count N` results by
// benchmark name (without the -GOMAXPROCS suffix) and metric unit.
type GoBench map[string]map[string]float64

// ParseGoBench reads `go test -bench` output and returns, for every benchmark
// and unit (ns/op, allocs/op, overhead-B/key, ...), the median over its runs.
func ParseGoBench(r io.Reader) (GoBench, error) {
	runs := map[string]map[string][]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		if runs[name] == nil {
			runs[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			runs[name][f[i+1]] = append(runs[name][f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("no benchmark results in the input")
	}
	out := GoBench{}
	for name, units := range runs {
		out[name] = map[string]float64{}
		for u, vs := range units {
			out[name][u] = median(vs)
		}
	}
	return out, nil
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile returns the p-th percentile (0..100) of vs by nearest rank:
// the smallest value with at least p% of the values at or below it, the
// ceil(p/100*n)-th (rounding to the nearest rank put p99 one rank low for
// about half the sample counts; found by review). The tiny subtraction
// keeps a product such as 0.99*100 = 99.00000000000001 at its rank.
func percentile(vs []float64, p float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s))-1e-9)) - 1
	return s[max(0, min(i, len(s)-1))]
}

// paced calls fn(i) for i = 0, 1, ... at `rate` calls per second for `d`,
// catching up every millisecond, and returns how many calls it made.
func paced(d time.Duration, rate float64, fn func(i int) error) (int, error) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	began := time.Now()
	n := 0
	for time.Since(began) < d {
		<-tick.C
		for due := int(rate*time.Since(began).Seconds()) - n; due > 0; due-- {
			if err := fn(n); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
