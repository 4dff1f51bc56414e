package main

import (
	"reflect"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func invite(t *testing.T) *sip.Request {
	t.Helper()
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "svc", Host: "127.0.0.32", Port: 5060})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "a.test"}, Params: sip.NewParams()}
	from.Params.Add("tag", "rt1")
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "svc", Host: "b.test"}, Params: sip.NewParams()})
	cid := sip.CallIDHeader("c1@test")
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 7, MethodName: sip.INVITE})
	req.AppendHeader(sip.NewHeader("Record-Route", "<sip:127.0.0.31;lr>"))
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.35", Port: 5060}})
	return req
}

func inDialogReq(method sip.RequestMethod, fromTag, toTag string, cseq uint32) *sip.Request {
	req := sip.NewRequest(method, sip.Uri{Scheme: "sip", Host: "127.0.0.32"})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "a.test"}, Params: sip.NewParams()}
	from.Params.Add("tag", fromTag)
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "svc", Host: "b.test"}, Params: sip.NewParams()}
	to.Params.Add("tag", toTag)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	return req
}

func TestDialogRoundTrip(t *testing.T) {
	d, err := newDialog(invite(t), "lt1", 1234)
	if err != nil {
		t.Fatal(err)
	}
	want := &Dialog{CallID: "c1@test", LocalTag: "lt1", RemoteTag: "rt1", InviteCSeq: 7, RemoteCSeq: 7,
		State: stateAnswered, RouteSet: []string{"<sip:127.0.0.31;lr>"}, Target: "sip:alice@127.0.0.35:5060", CreatedMS: 1234}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("newDialog = %+v, want %+v", d, want)
	}
	back, err := decodeDialog("c1@test", d.Items())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, d) {
		t.Fatalf("decode(encode) = %+v, want %+v", back, d)
	}
	items := d.Items()
	delete(items, keyRemoteTag)
	if _, err := decodeDialog("c1@test", items); err == nil {
		t.Fatal("a dialog without its remote tag decoded")
	}
}

func TestDialogChecksInDialogRequests(t *testing.T) {
	d, _ := newDialog(invite(t), "lt1", 0)
	for _, c := range []struct {
		name string
		req  *sip.Request
		want int
	}{
		{"ACK of the INVITE", inDialogReq(sip.ACK, "rt1", "lt1", 7), 0},
		{"ACK with another CSeq", inDialogReq(sip.ACK, "rt1", "lt1", 8), sip.StatusCallTransactionDoesNotExists},
		{"BYE", inDialogReq(sip.BYE, "rt1", "lt1", 8), 0},
		{"BYE with an old CSeq", inDialogReq(sip.BYE, "rt1", "lt1", 7), sip.StatusInternalServerError},
		{"BYE of another dialog (remote tag)", inDialogReq(sip.BYE, "rt2", "lt1", 8), sip.StatusCallTransactionDoesNotExists},
		{"BYE of another dialog (local tag)", inDialogReq(sip.BYE, "rt1", "lt2", 8), sip.StatusCallTransactionDoesNotExists},
		{"INFO", inDialogReq(sip.INFO, "rt1", "lt1", 9), 0},
	} {
		if got, why := d.checkRequest(c.req); got != c.want {
			t.Errorf("%s: status %d (%s), want %d", c.name, got, why, c.want)
		}
	}
}
