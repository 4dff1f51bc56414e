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

// cutOnTrying is a server transaction that cuts the node off Cassandra as
// the node sends 100 Trying: after the check of its lease and before its
// commit and flush.
type cutOnTrying struct {
	*fakeTx
	proxy *faulttest.CutProxy
}

func (c cutOnTrying) Respond(r *sip.Response) error {
	if r.StatusCode == sip.StatusTrying {
		c.proxy.Cut()
	}
	return c.fakeTx.Respond(r)
}

// With SIPNODE_FLUSH_BEFORE_ANSWER no answered dialog may be lost. The node
// answered 200 whatever the flush said: when the node lost Cassandra before
// the dialog was written, the flush ended without it (the fence discards
// the sessions not recorded yet) or failed, and the caller had a 200 for a
// dialog no node would ever find.
func TestAFlushBeforeAnswerAnswers200OnlyForAWrittenDialog(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	hosts, port := cassandratest.Hosts(t)
	proxy := faulttest.NewCutProxy(t, hosts[0], port)
	cfg := adapter.DefaultConfig()
	cfg.Hosts, cfg.Port, cfg.Keyspace, cfg.NodeID = []string{"127.0.0.1"}, proxy.Port(), ks, "flush-answer"
	cfg.LeaseTTL, cfg.StateTTL, cfg.Timeout = time.Second, time.Hour, 200*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := NewNode(ctx, Config{Listen: "127.0.0.1:5060", Hold: time.Second, FlushBeforeAnswer: true},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	a, err := adapter.Open(context.Background(), cfg, adapter.WithHooks(n.Hooks()))
	if err != nil {
		t.Fatal(err)
	}
	n.a = a
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = a.Close(ctx)
	})

	if res := send(t, n.onInvite, invite(t)); res.StatusCode != 200 {
		t.Fatalf("INVITE while Cassandra answers: %d %s", res.StatusCode, res.Reason)
	}
	req := invite(t)
	cid := sip.CallIDHeader("c2@test")
	req.ReplaceHeader(&cid)
	tx := cutOnTrying{fakeTx: &fakeTx{}, proxy: proxy}
	n.onInvite(req, tx)
	if res := tx.final(t); res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("INVITE whose dialog was never written: %d %s, want 503 with Retry-After", res.StatusCode, res.Reason)
	}
}
