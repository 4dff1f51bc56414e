package main

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// OnRecovered names the fenced sessions peers took meanwhile, to be dropped
// if the host still holds them. The node ignored the list, relying on
// OnFenced's drop, which runs in the background: a request that made such a
// session resident after it was served from memory though another node
// owned it. Found by review.
func TestRecoveryDropsTheRegistrationsPeersTook(t *testing.T) {
	n := openNode(t, cassandratest.Keyspace(t), "recovered-lost", time.Second)
	phone := sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.41", Port: 5070}
	req := register("alice", &phone)
	if res := send(t, n.onRegister, req); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	if n.table.Len() != 1 {
		t.Fatalf("%d sessions resident after a REGISTER, want 1", n.table.Len())
	}
	n.Hooks().OnRecovered([]string{regPrefix + req.To().Address.User + "@" + req.To().Address.Host})
	for deadline := time.Now().Add(2 * time.Second); n.table.Len() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a registration OnRecovered reported lost is still resident")
		}
	}
}
