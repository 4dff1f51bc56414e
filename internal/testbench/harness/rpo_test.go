package harness

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// make bench runs the window step twice under one node ID. The second run
// committed over the sessions the first had stored, whose creates are
// refused (adopt them first): no write finished, and the run reported a
// largest age of seconds beside a bound of the delay alone, as a success.
// Each run now writes sessions of its own, and a run with no write fails.
func TestTheWindowStepRunsTwiceUnderOneNodeID(t *testing.T) {
	hosts, port := cassandratest.Hosts(t)
	ctx := context.Background()
	e := &Env{Hosts: hosts, Port: port, Keyspace: fmt.Sprintf("harness_rpo_%d", time.Now().UnixNano()), Log: io.Discard}
	if err := e.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.Teardown(context.WithoutCancel(ctx))
	for run := 1; run <= 2; run++ {
		res, err := e.RPO(ctx, 500, time.Second)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if res.FlushP99MS <= 0 || res.MaxMS <= 0 {
			t.Fatalf("run %d measured no write: %+v", run, res)
		}
	}
}
