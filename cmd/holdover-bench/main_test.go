package main

import "testing"

func TestCheckSizesNamesTheFlagAndItsLeast(t *testing.T) {
	ok := []size{{"-sessions", 1, 1}, {"-takeover-sessions", 10000, 2}}
	if err := checkSizes(ok); err != nil {
		t.Fatalf("checkSizes(%v) = %v, want nil", ok, err)
	}
	bad := append(ok, size{"-takeover-rounds", 0, 1}, size{"-passes", -1, 1})
	err := checkSizes(bad)
	if err == nil || err.Error() != "-takeover-rounds 0: want at least 1" {
		t.Fatalf("checkSizes(%v) = %v, want the first flag below its least named with it", bad, err)
	}
}
