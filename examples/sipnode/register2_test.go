package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// Two phones of one address of record register through different nodes
// (the proxy dispatches by Call-ID, and each phone has its own). A binding
// answered 200 OK must survive: after both nodes leave, a third node must
// list both. B had looked the address up a moment before (a query, none
// yet), and its negative cache answered the REGISTER's lookup: B created the
// registration over A's, answered 200 OK, and dropped the binding as owned
// elsewhere. Found by review.
func TestARegisterThroughTwoNodesKeepsEveryBindingAnswered(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	a := openNode(t, ks, "reg2-a", 400*time.Millisecond)
	b := openNode(t, ks, "reg2-b", 400*time.Millisecond)
	phone1 := sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.41", Port: 5070}
	phone2 := sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.42", Port: 5070}

	// Phone 2 queried its bindings through B a moment ago (none yet).
	if res := send(t, b.onRegister, register("alice", nil)); res.StatusCode != 200 {
		t.Fatalf("query on B: %d %s", res.StatusCode, res.Reason)
	}
	// Phone 1 registers through A.
	if res := send(t, a.onRegister, register("alice", &phone1)); res.StatusCode != 200 {
		t.Fatalf("REGISTER phone1 on A: %d %s", res.StatusCode, res.Reason)
	}
	if err := a.a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Phone 2 registers through B.
	res := send(t, b.onRegister, register("alice", &phone2))
	if res.StatusCode != 200 {
		// Refused (A owns the address): the phone's retry reaches A.
		if res.StatusCode != 503 {
			t.Fatalf("REGISTER phone2 on B: %d %s, want 200 or 503", res.StatusCode, res.Reason)
		}
		if res = send(t, a.onRegister, register("alice", &phone2)); res.StatusCode != 200 {
			t.Fatalf("REGISTER phone2 retried on A: %d %s", res.StatusCode, res.Reason)
		}
	}
	for _, n := range []*Node{a, b} {
		if err := n.a.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	for _, n := range []*Node{a, b} {
		if _, err := n.a.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	c := openNode(t, ks, "reg2-c", time.Second)
	q := send(t, c.onRegister, register("alice", nil))
	got := map[string]bool{}
	for _, h := range q.GetHeaders("Contact") {
		if ch, ok := h.(*sip.ContactHeader); ok {
			got[ch.Address.String()] = true
		} else {
			got[h.Value()] = true
		}
	}
	t.Logf("bindings on C: %d %v", q.StatusCode, q.GetHeaders("Contact"))
	for _, p := range []sip.Uri{phone1, phone2} {
		found := false
		for k := range got {
			if strings.Contains(k, p.String()) {
				found = true
			}
		}
		if !found {
			t.Errorf("binding %s, answered 200 OK, is lost: bindings now %v", p.String(), q.GetHeaders("Contact"))
		}
	}
}
