package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// fakeTx records the responses a handler sends.
type fakeTx struct {
	mu   sync.Mutex
	sent []*sip.Response
}

func (f *fakeTx) Respond(r *sip.Response) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, r)
	return nil
}
func (f *fakeTx) Acks() <-chan *sip.Request          { return nil }
func (f *fakeTx) OnCancel(sip.FnTxCancel) bool       { return false }
func (f *fakeTx) Terminate()                         {}
func (f *fakeTx) OnTerminate(sip.FnTxTerminate) bool { return false }
func (f *fakeTx) Done() <-chan struct{}              { return nil }
func (f *fakeTx) Err() error                         { return nil }
func (f *fakeTx) final(t *testing.T) *sip.Response {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.sent) - 1; i >= 0; i-- {
		if f.sent[i].StatusCode >= 200 {
			return f.sent[i]
		}
	}
	t.Fatal("no final response")
	return nil
}

func openNode(t *testing.T, ks, id string, hold time.Duration) *Node {
	t.Helper()
	hosts, port := cassandratest.Hosts(t)
	cfg := adapter.DefaultConfig()
	cfg.Hosts, cfg.Port, cfg.Keyspace, cfg.NodeID = hosts, port, ks, id
	cfg.LeaseTTL, cfg.StateTTL = 2*time.Second, time.Hour
	n := NewNode(context.Background(), Config{Listen: "127.0.0.1:5060", Hold: hold}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a, err := adapter.Open(context.Background(), cfg, adapter.WithHooks(n.Hooks()))
	if err != nil {
		t.Fatal(err)
	}
	n.a = a
	t.Cleanup(func() { _, _ = a.Close(context.Background()) })
	return n
}

func withCallID(req *sip.Request, cid string) *sip.Request {
	h := sip.CallIDHeader(cid)
	req.AppendHeader(&h)
	return req
}

func send(t *testing.T, h func(*sip.Request, sip.ServerTransaction), req *sip.Request) *sip.Response {
	t.Helper()
	tx := &fakeTx{}
	h(req, tx)
	return tx.final(t)
}

// A dialog created on A is served by B: held while A is live, adopted once
// A releases it, checked against its tags and CSeq, ended by BYE.
func TestDialogMovesToAnotherNode(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	a := openNode(t, ks, "sip-a", time.Minute)
	b := openNode(t, ks, "sip-b", 400*time.Millisecond)

	res := send(t, a.onInvite, invite(t))
	if res.StatusCode != 200 {
		t.Fatalf("INVITE: %d %s", res.StatusCode, res.Reason)
	}
	localTag, _ := res.To().Params.Get("tag")
	if localTag == "" || res.Contact() == nil || len(res.Body()) == 0 {
		t.Fatalf("200 without To tag, Contact or SDP:\n%s", res)
	}
	a.onAck(withCallID(inDialogReq(sip.ACK, "rt1", localTag, 7), "c1@test"), nil)
	if err := a.a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A is alive and owns it: its lease runs past B's hold of 400ms, so B
	// answers 503 at once rather than holding a request it cannot serve.
	began := time.Now()
	res = send(t, b.inDialog, withCallID(inDialogReq(sip.INFO, "rt1", localTag, 8), "c1@test"))
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("INFO while the owner lives: %d %s, want 503 with Retry-After", res.StatusCode, res.Reason)
	}
	if held := time.Since(began); held >= 300*time.Millisecond {
		t.Fatalf("answered after %s, want at once: the owner's lease runs past the 400ms hold", held)
	}

	// A drains: it releases the dialog, B adopts it at once.
	if _, err := a.a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	res = send(t, b.inDialog, withCallID(inDialogReq(sip.INFO, "rt1", localTag, 8), "c1@test"))
	if res.StatusCode != 200 {
		t.Fatalf("INFO after A released: %d %s", res.StatusCode, res.Reason)
	}
	if s := b.snapshot(); s.AdoptedDialogs != 1 {
		t.Fatalf("adopted %d dialogs, want 1", s.AdoptedDialogs)
	}
	// The restored dialog is checked like a local one: a re-INVITE moves the
	// CSeq an ACK must carry, UPDATE and BYE must go above the last CSeq.
	for _, c := range []struct {
		req  *sip.Request
		want int
	}{
		{inDialogReq(sip.INVITE, "rt1", localTag, 9), 200},
		{inDialogReq(sip.UPDATE, "rt1", localTag, 10), 200},
		{inDialogReq(sip.BYE, "rt1", "other", 11), 481},
		{inDialogReq(sip.BYE, "rt1", localTag, 10), 500}, // CSeq 10 already seen
		{inDialogReq(sip.BYE, "rt1", localTag, 11), 200},
		{inDialogReq(sip.BYE, "rt1", localTag, 12), 481}, // ended
	} {
		h := b.inDialog
		if c.req.Method == sip.INVITE {
			h = b.onInvite
		}
		res := send(t, h, withCallID(c.req, "c1@test"))
		if res.StatusCode != c.want {
			t.Errorf("%s CSeq %d: %d %s, want %d", c.req.Method, c.req.CSeq().SeqNo, res.StatusCode, res.Reason, c.want)
		}
	}
	res = send(t, b.inDialog, withCallID(inDialogReq(sip.BYE, "x", "y", 2), "never@test"))
	if res.StatusCode != 481 {
		t.Fatalf("BYE for an unknown Call-ID: %d, want 481", res.StatusCode)
	}
}

func register(aor string, contact *sip.Uri) *sip.Request {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "127.0.0.31"})
	addr := sip.Uri{Scheme: "sip", User: aor, Host: "holdover.test"}
	req.AppendHeader(&sip.ToHeader{Address: addr})
	from := &sip.FromHeader{Address: addr, Params: sip.NewParams()}
	from.Params.Add("tag", "f1")
	req.AppendHeader(from)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.REGISTER})
	if contact != nil {
		req.AppendHeader(&sip.ContactHeader{Address: *contact})
		req.AppendHeader(sip.NewHeader("Expires", "600"))
	}
	return withCallID(req, "reg-"+aor)
}

// A registration made on A is answered by B after A leaves.
func TestRegistrationSurvivesItsNode(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	a := openNode(t, ks, "sip-a", time.Second)
	b := openNode(t, ks, "sip-b", time.Second)
	phone := sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.36", Port: 5070}
	res := send(t, a.onRegister, register("alice", &phone))
	if res.StatusCode != 200 || res.Contact() == nil {
		t.Fatalf("REGISTER: %d, Contact %v", res.StatusCode, res.Contact())
	}
	if _, err := a.a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	res = send(t, b.onRegister, register("alice", nil))
	if res.StatusCode != 200 || res.Contact() == nil || res.Contact().Address.String() != phone.String() {
		t.Fatalf("query on B: %d, Contact %v, want %s", res.StatusCode, res.Contact(), phone.String())
	}
	// Unregistering ends the session.
	unreg := register("alice", &phone)
	unreg.ReplaceHeader(sip.NewHeader("Expires", "0"))
	if res := send(t, b.onRegister, unreg); res.StatusCode != 200 || res.Contact() != nil {
		t.Fatalf("unregister: %d, Contact %v", res.StatusCode, res.Contact())
	}
	if b.table.Len() != 0 {
		t.Fatalf("%d sessions resident after the last binding went", b.table.Len())
	}
}
