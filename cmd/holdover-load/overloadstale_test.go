package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// make bench runs `holdover-load overload -out bench/out/failover.json` and
// then holdover-bench -failover bench/out/failover.json regardless of its
// status. When the overload run fails before writing, a previous run's file
// must not stay behind to be copied into results.json as this run's
// figures: it did. Found by review.
func TestAFailedOverloadRunLeavesNoStaleFigures(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "failover.json")
	stale := []byte(`{"overload_lost_beyond_window":0,"overload_refusals":1,"false_fences":0,"failover_p50_ms":1,"failover_p99_ms":2,"failover_max_ms":3,"lease_ttl_ms":2000,"failover_floor_ms":1,"saturation_events_per_s":1,"steady_events_per_s":1}` + "\n")
	if err := os.WriteFile(out, stale, 0o644); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(dir, "node")
	if err := os.WriteFile(notExec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var so, se bytes.Buffer
	code := run(context.Background(), []string{"overload", "-node-bin", notExec, "-out", out}, &so, &se)
	if code == 0 {
		t.Fatalf("overload succeeded with a non-executable node binary")
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("overload exited %d but left a figures file %s in place; make bench then copies its figures into results.json:\n%s", code, out, so.String())
	}
}
