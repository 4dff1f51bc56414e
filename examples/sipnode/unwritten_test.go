package main

import (
	"context"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/store"
)

// A dialog whose node died between recording it and its first write has an
// ownership row and no state. resolve documents it as "found nowhere": 481.
// Every later request for that Call-ID must get 481 as well; the node must
// not keep an empty, undecodable dialog resident (500 "Dialog Unreadable").
func TestARecordedUnwrittenDialogStays481(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	b := openNode(t, ks, "sip-b", 400*time.Millisecond)
	hosts, port := cassandratest.Hosts(t)
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{Hosts: hosts, Port: port, Keyspace: ks})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ok, _, err := st.CreateOwner(ctx, dialogPrefix+"unwritten@test", "dead-node", 0, time.Hour); err != nil || !ok {
		t.Fatalf("record the dialog for a dead node: %v %v", ok, err)
	}
	for i, cseq := range []uint32{8, 9, 10} {
		res := send(t, b.inDialog, withCallID(inDialogReq(sip.BYE, "rt1", "lt1", cseq), "unwritten@test"))
		if res.StatusCode != 481 {
			t.Errorf("request %d for a recorded, unwritten dialog: %d %s, want 481", i+1, res.StatusCode, res.Reason)
		}
	}
	if n := b.table.Len(); n != 0 {
		t.Errorf("%d sessions resident after 481s, want 0", n)
	}
}
