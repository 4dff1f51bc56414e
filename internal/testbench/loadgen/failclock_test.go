package loadgen

import (
	"context"
	"testing"
	"time"
)

// A Fail hook that waits before it kills the node (the demo waits for its
// shared setting to be served first) does not add its wait to the failover
// times: the clock starts once the node is down.
func TestAFailHooksWaitIsNotFailoverTime(t *testing.T) {
	const hold = time.Second
	rep, progress, err := failoverRun(t, func(_ *fakeCluster, cfg *Config) {
		kill := cfg.Failure.Fail
		cfg.Failure.Fail = func(ctx context.Context, n Node) error {
			time.Sleep(hold)
			return kill(ctx, n)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Adopted != 20 || rep.LostBeyondWindow != 0 {
		t.Fatalf("not every session adopted:\n%s", progress)
	}
	// The fake's lease runs 300ms past the kill; the hold before the kill
	// is no part of the failover.
	if rep.FailoverP50Ms >= ms(hold) || rep.LeaseWait >= hold {
		t.Fatalf("failover p50=%v ms, lease wait %v: the %v the hook waited before the kill is counted", rep.FailoverP50Ms, rep.LeaseWait, hold)
	}
	if rep.FailoverP50Ms < ms(rep.LeaseWait)-1 || rep.LeaseWait < 250*time.Millisecond {
		t.Fatalf("failover p50=%v ms, lease wait %v: served before the lease ran out", rep.FailoverP50Ms, rep.LeaseWait)
	}
}
