package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/devtools/faulttest"
)

// A REGISTER checked the node's lease once, before adopting the address of
// record, and answered 200 OK however long the adoption took: a node whose
// lease lapsed meanwhile confirmed a binding a peer adopting the
// registration would never see (I1). Here the lease lapses after the
// adoption claimed the registration and before the REGISTER commits.
func TestARegisterIsRefusedWhenTheLeaseLapsesDuringItsAdoption(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	hosts, port := cassandratest.Hosts(t)
	phone1 := sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.43", Port: 5070}
	phone2 := sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.44", Port: 5070}

	a := openNode(t, ks, "lapse-a", time.Second)
	if res := send(t, a.onRegister, register("bob", &phone1)); res.StatusCode != 200 {
		t.Fatalf("REGISTER on A: %d %s", res.StatusCode, res.Reason)
	}
	if _, err := a.a.Close(context.Background()); err != nil { // released: B adopts it at once
		t.Fatal(err)
	}

	proxy := faulttest.NewCutProxy(t, hosts[0], port)
	cfg := adapter.DefaultConfig()
	cfg.Hosts, cfg.Port, cfg.Keyspace, cfg.NodeID = []string{"127.0.0.1"}, proxy.Port(), ks, "lapse-b"
	cfg.LeaseTTL, cfg.StateTTL, cfg.Timeout = time.Second, time.Hour, 200*time.Millisecond
	gate := faulttest.NewAdoptionGate()
	b := NewNode(context.Background(), Config{Listen: "127.0.0.1:5060", Hold: time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ad, err := adapter.Open(context.Background(), cfg, adapter.WithHooks(b.Hooks()), adapter.WithTracerProvider(gate))
	if err != nil {
		t.Fatal(err)
	}
	b.a = ad
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = ad.Close(ctx)
	})

	answer := make(chan *sip.Response, 1)
	go func() {
		tx := &fakeTx{}
		b.onRegister(register("bob", &phone2), tx)
		tx.mu.Lock()
		defer tx.mu.Unlock()
		if len(tx.sent) == 0 {
			answer <- nil
			return
		}
		answer <- tx.sent[len(tx.sent)-1]
	}()
	select {
	case <-gate.Adopted:
	case res := <-answer:
		t.Fatalf("REGISTER answered before its adoption ended: %v", res)
	case <-time.After(10 * time.Second):
		t.Fatal("the REGISTER's adoption did not end")
	}
	// The adoption claimed the registration; now B loses Cassandra and its
	// lease runs out before the REGISTER commits.
	proxy.Cut()
	deadline := time.Now().Add(10 * time.Second)
	for b.a.LeaseValid() {
		if time.Now().After(deadline) {
			t.Fatal("lease still valid 10s after Cassandra was cut off")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(gate.Release)
	res := <-answer
	if res == nil {
		t.Fatal("REGISTER not answered")
	}
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("REGISTER through a node whose lease lapsed before it committed: %d %s, want 503 with Retry-After", res.StatusCode, res.Reason)
	}
}
