package soak

import "testing"

// The progress line's faults= counts every fault the nemesis made: a
// partition too (it was left out, so a soak of partitions alone printed
// faults=0), and not the steps that end a fault or bring a node back.
func TestTheProgressLineCountsEveryEpisode(t *testing.T) {
	steps := map[string]int{
		FaultKill: 1, FaultTerm: 2, FaultKillInDrain: 1, FaultPause: 3, FaultStall: 1, FaultPartition: 2,
		FaultResume: 3, FaultStallEnd: 1, FaultHeal: 2, FaultRestart: 3, FaultReplace: 1, FaultDrained: 1,
	}
	if n := faultEpisodes(steps); n != 10 {
		t.Fatalf("faultEpisodes(%v) = %d, want 10 (kill 1, term 2, kill-in-drain 1, pause 3, stall 1, partition 2)", steps, n)
	}
}
