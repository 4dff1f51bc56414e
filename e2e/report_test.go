//go:build drills

package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// result is one drill's line in report.json.
type result struct {
	Name                string  `json:"name"`
	Passed              bool    `json:"passed"`
	Sessions            int     `json:"sessions"`
	AcknowledgedChanges int64   `json:"acknowledged_changes"`
	LostBeyondWindow    int64   `json:"lost_beyond_window"`
	StaleOverwrites     int     `json:"stale_overwrites"`
	DuplicateOwners     int     `json:"duplicate_owners"`
	Seconds             float64 `json:"seconds"`
	// Failures says why a drill failed, one line per broken promise.
	Failures []string `json:"failures,omitempty"`
	// Figures are the drill's own measurements, written beside the fixed
	// fields.
	Figures map[string]any `json:"-"`
	// keys lists the figures in the order they were set, for the table.
	keys []string
}

// set records a drill-specific figure.
func (r *result) set(key string, v any) {
	if r.Figures == nil {
		r.Figures = map[string]any{}
	}
	if _, ok := r.Figures[key]; !ok {
		r.keys = append(r.keys, key)
	}
	if f, ok := v.(float64); ok {
		v = math.Round(f*10) / 10
	}
	r.Figures[key] = v
}

// MarshalJSON writes the fixed fields and then the figures in one object.
func (r result) MarshalJSON() ([]byte, error) {
	type plain result
	b, err := json.Marshal(plain(r))
	if err != nil || len(r.Figures) == 0 {
		return b, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	maps.Copy(m, r.Figures)
	// Fixed fields first, then figures, each in a stable order.
	var buf strings.Builder
	buf.WriteByte('{')
	first := true
	write := func(k string) {
		v, ok := m[k]
		if !ok {
			return
		}
		vb, _ := json.Marshal(v)
		kb, _ := json.Marshal(k)
		if !first {
			buf.WriteByte(',')
		}
		first = false
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
		delete(m, k)
	}
	for _, k := range []string{"name", "passed", "sessions", "acknowledged_changes", "lost_beyond_window",
		"stale_overwrites", "duplicate_owners", "seconds", "failures"} {
		write(k)
	}
	for _, k := range r.keys {
		write(k)
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		write(k)
	}
	buf.WriteByte('}')
	return []byte(buf.String()), nil
}

// report is report.json.
type report struct {
	Drills []*result `json:"drills"`
}

func (r *report) passed() bool {
	for _, d := range r.Drills {
		if !d.Passed {
			return false
		}
	}
	return true
}

func (r *report) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// table renders the report for a terminal: the fixed columns, then each
// drill's own figures on the lines below it.
func (r *report) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-20s %-6s %8s %12s %11s %6s %10s %8s\n",
		"drill", "result", "sessions", "acknowledged", "lost>window", "stale", "dup_owners", "seconds")
	fmt.Fprintf(&b, "%s\n", strings.Repeat("-", 88))
	for _, d := range r.Drills {
		res := "PASS"
		if !d.Passed {
			res = "FAIL"
		}
		fmt.Fprintf(&b, "%-20s %-6s %8d %12d %11d %6d %10d %8.1f\n",
			d.Name, res, d.Sessions, d.AcknowledgedChanges, d.LostBeyondWindow, d.StaleOverwrites, d.DuplicateOwners, d.Seconds)
		var figs []string
		for _, k := range d.keys {
			figs = append(figs, fmt.Sprintf("%s=%v", k, d.Figures[k]))
		}
		for len(figs) > 0 {
			line := "    "
			for len(figs) > 0 && (len(line) == 4 || len(line)+len(figs[0]) < 100) {
				line += figs[0] + "  "
				figs = figs[1:]
			}
			b.WriteString(strings.TrimRight(line, " ") + "\n")
		}
		for _, f := range d.Failures {
			fmt.Fprintf(&b, "    FAILED: %s\n", f)
		}
	}
	return b.String()
}
