package harness

import (
	"encoding/json"
	"strings"
	"testing"
)

// The window's figures are top-level keys of results.json (embedded), and
// the equal-priority run's the same keys under window_shared.
func TestResultsWindowKeys(t *testing.T) {
	r := Results{Window: Window{RPOMaxMS: 1, FlushStartLateMaxMS: 2, FlushStartsHeld: 3}, WindowShared: &Window{FlushStartLateMaxMS: 4}}
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"rpo_max_ms":1,`, `"flush_start_late_max_ms":2,`, `"flush_starts_held":3,`, `"window_shared":{`, `"flush_start_late_max_ms":4,`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("results.json lacks %s: %s", want, b)
		}
	}
}
