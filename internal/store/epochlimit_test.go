package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/buffer"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// A session ID owned at the last epoch a timestamp carries (MaxEpoch) can be
// neither claimed nor, once ended, started afresh: both are refused with a
// permanent error that names the limit and says what the host can do. The
// row is moved to MaxEpoch by a lightweight transaction, as every write of
// an ownership row must be.
func TestTheEpochLimitIsNamedAndPermanent(t *testing.T) {
	hosts, port := cassandratest.Hosts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := Options{Hosts: hosts, Port: port, Keyspace: cassandratest.Keyspace(t), CreateSchema: true}
	st, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ok, _, err := st.CreateOwner(ctx, "old", "a", 0, time.Hour); err != nil || !ok {
		t.Fatalf("create: %v %v", ok, err)
	}
	row := map[string]any{}
	if ok, err := st.s.Query(fmt.Sprintf(`UPDATE %s.owners SET epoch = ? WHERE session = ? IF owner = ?`, o.Keyspace),
		int64(MaxEpoch), "old", "a").MapScanCASContext(ctx, row); err != nil || !ok {
		t.Fatalf("move the row to the last epoch: %v %v", ok, err)
	}
	want := fmt.Sprintf("epoch limit reached: the session ID has been owned at %d epochs", uint64(MaxEpoch))
	check := func(op string, err error) {
		t.Helper()
		if err == nil || !buffer.IsPermanent(err) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "HOLDOVER_ENDED_TTL") {
			t.Errorf("%s at the last epoch: %v (permanent %v); want a permanent error containing %q and naming HOLDOVER_ENDED_TTL",
				op, err, buffer.IsPermanent(err), want)
		}
	}
	_, _, err = st.Claim(ctx, "old", Owner{Node: "a", Epoch: MaxEpoch}, "b", time.Hour)
	check("claim", err)
	if ok, err := st.EndOwner(ctx, "old", "a", MaxEpoch, time.Hour); err != nil || !ok {
		t.Fatalf("end: %v %v", ok, err)
	}
	_, _, err = st.CreateOwner(ctx, "old", "b", 0, time.Hour)
	check("fresh start after the End", err)
}
