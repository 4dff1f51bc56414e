package harness

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodFailover = `{
  "overload_lost_beyond_window": 0,
  "overload_refusals": 1234,
  "false_fences": 2,
  "failover_p50_ms": 10450.5,
  "failover_p99_ms": 10980,
  "failover_max_ms": 11210,
  "lease_ttl_ms": 10000,
  "failover_floor_ms": 10050,
  "saturation_events_per_s": 2500,
  "steady_events_per_s": 1990.5
}
`

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "failover.json")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseFailoverGood(t *testing.T) {
	path := writeFile(t, goodFailover)
	r := &Results{}
	if err := r.LoadFailover(path); err != nil {
		t.Fatal(err)
	}
	f := r.Failover
	if f.OverloadLostBeyondWindow == nil || *f.OverloadLostBeyondWindow != 0 ||
		f.OverloadRefusals == nil || *f.OverloadRefusals != 1234 ||
		f.FalseFences == nil || *f.FalseFences != 2 ||
		f.FailoverP50MS == nil || *f.FailoverP50MS != 10450.5 ||
		f.FailoverP99MS == nil || *f.FailoverP99MS != 10980 ||
		f.FailoverMaxMS == nil || *f.FailoverMaxMS != 11210 ||
		f.LeaseTTLMS == nil || *f.LeaseTTLMS != 10000 ||
		f.SaturationEventsPerS == nil || *f.SaturationEventsPerS != 2500 ||
		f.SteadyEventsPerS == nil || *f.SteadyEventsPerS != 1990.5 {
		t.Fatalf("figures not copied: %+v", f)
	}
	if len(r.Notes) != 0 {
		t.Errorf("notes %q for measured figures", r.Notes)
	}
	// The results carry the same ten keys, at the top level.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	var in map[string]any
	if err := json.Unmarshal([]byte(goodFailover), &in); err != nil {
		t.Fatal(err)
	}
	for k, v := range in {
		if out[k] != v {
			t.Errorf("results.json %s = %v, want %v", k, out[k], v)
		}
	}
	var table bytes.Buffer
	r.Table(&table)
	for _, want := range []string{"10450 / 10980 / 11210", "at 1990 of 2500 events/s", "10000 lease TTL", "p99 <= TTL + 300 ms", "0 / 1234 / 2", "0 / - / 0"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

func TestParseFailoverRejects(t *testing.T) {
	for name, tc := range map[string]struct{ text, want string }{
		"unknown key":   {strings.Replace(goodFailover, `"false_fences"`, `"false_fence"`, 1), `unknown field "false_fence"`},
		"missing key":   {strings.Replace(goodFailover, `  "false_fences": 2,`+"\n", "", 1), "false_fences missing"},
		"null":          {strings.Replace(goodFailover, `"lease_ttl_ms": 10000`, `"lease_ttl_ms": null`, 1), "lease_ttl_ms missing or null"},
		"negative":      {strings.Replace(goodFailover, `"overload_refusals": 1234`, `"overload_refusals": -1`, 1), "overload_refusals is -1"},
		"fraction":      {strings.Replace(goodFailover, `"false_fences": 2`, `"false_fences": 2.5`, 1), "false_fences"},
		"zero TTL":      {strings.Replace(goodFailover, `"lease_ttl_ms": 10000`, `"lease_ttl_ms": 0`, 1), "lease_ttl_ms is 0"},
		"out of order":  {strings.Replace(goodFailover, `"failover_max_ms": 11210`, `"failover_max_ms": 10000`, 1), "out of order"},
		"two objects":   {goodFailover + "{}", "more than one JSON value"},
		"not an object": {"[1, 2]", "cannot unmarshal array"},
		"empty":         {"", "EOF"},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, tc.text)
			r := &Results{}
			err := r.LoadFailover(path)
			if err == nil {
				t.Fatalf("accepted: %+v", r.Failover)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s and %q", err, path, tc.want)
			}
			if r.Failover != (Failover{}) || len(r.Notes) != 0 {
				t.Errorf("a rejected file changed the results: %+v, notes %q", r.Failover, r.Notes)
			}
		})
	}
}

func TestParseFailoverUnreadable(t *testing.T) {
	dir := t.TempDir() // a directory: it exists, but is no file to read
	r := &Results{}
	err := r.LoadFailover(dir)
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %v does not name %s", err, dir)
	}
}

func TestParseFailoverNotMeasured(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.json")
	for _, path := range []string{"", missing} {
		r := &Results{}
		if err := r.LoadFailover(path); err != nil {
			t.Fatalf("%q: %v", path, err)
		}
		if r.Failover != (Failover{}) {
			t.Errorf("%q: figures %+v, want null", path, r.Failover)
		}
		if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "not measured") || !strings.Contains(r.Notes[0], path) {
			t.Errorf("%q: notes %q", path, r.Notes)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"overload_lost_beyond_window", "overload_refusals", "false_fences", "failover_p50_ms", "failover_p99_ms", "failover_max_ms", "lease_ttl_ms", "failover_floor_ms", "saturation_events_per_s", "steady_events_per_s"} {
			if !bytes.Contains(b, []byte(`"`+k+`":null`)) {
				t.Errorf("%q: results.json lacks %s: null", path, k)
			}
		}
		var table bytes.Buffer
		r.Table(&table)
		rows, _, _ := strings.Cut(table.String(), "note:")
		if n := strings.Count(rows, "not measured"); n != 2 {
			t.Errorf("%q: %d rows say not measured, want 2:\n%s", path, n, table.String())
		}
	}
}
