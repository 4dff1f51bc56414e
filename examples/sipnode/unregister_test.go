package main

import (
	"context"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// A REGISTER removing a binding of an address of record nobody registered
// committed the removal as a new registration: the node kept an empty
// registration resident (counted in resident_sessions) and recorded it in
// Cassandra, though with no binding left there is nothing to keep.
func TestAnUnregisterOfAnUnknownAddressKeepsNothing(t *testing.T) {
	n := openNode(t, cassandratest.Keyspace(t), "unreg", time.Second)
	phone := sip.Uri{Scheme: "sip", User: "carol", Host: "127.0.0.45", Port: 5070}
	unreg := register("carol", &phone)
	unreg.ReplaceHeader(sip.NewHeader("Expires", "0"))
	if res := send(t, n.onRegister, unreg); res.StatusCode != 200 || res.Contact() != nil {
		t.Fatalf("unregister: %d %s, Contact %v", res.StatusCode, res.Reason, res.Contact())
	}
	if k := n.table.Len(); k != 0 {
		t.Errorf("%d sessions resident after removing a binding of an unknown address, want 0", k)
	}
	if err := n.a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s, err := n.a.Peek(context.Background(), regPrefix+"carol@holdover.test"); err == nil {
		t.Errorf("registration recorded for an address with no binding: owner %q, %d items", s.Owner, len(s.Items))
	}
}
