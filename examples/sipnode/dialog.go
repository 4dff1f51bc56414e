package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// A dialog is stored as one session, ID "call:" + Call-ID, one item per
// field, so a commit hands the adapter only the fields it changed (an ACK
// changes state, a BYE nothing: it ends the session).
const (
	dialogPrefix = "call:"
	regPrefix    = "aor:"

	keyLocalTag   = "local_tag"
	keyRemoteTag  = "remote_tag"
	keyInviteCSeq = "invite_cseq" // CSeq of the INVITE that set up the dialog or last changed it: an ACK carries it
	keyRemoteCSeq = "remote_cseq" // highest CSeq the remote party sent
	keyState      = "state"
	keyRouteSet   = "route_set" // Record-Route values of the initial INVITE, in order, one a line
	keyTarget     = "remote_target"
	keyCreated    = "created_unix_ms"
)

// Dialog states.
const (
	stateAnswered  = "answered"  // 200 sent, ACK not seen yet
	stateConfirmed = "confirmed" // ACK seen
)

// Dialog is a dialog as this UAS keeps it (RFC 3261 §12.1.1).
type Dialog struct {
	CallID     string
	LocalTag   string
	RemoteTag  string
	InviteCSeq uint32
	RemoteCSeq uint32
	State      string
	RouteSet   []string
	Target     string
	CreatedMS  int64
}

// Items encodes d as the session's items.
func (d *Dialog) Items() map[string][]byte {
	return map[string][]byte{
		keyLocalTag:   []byte(d.LocalTag),
		keyRemoteTag:  []byte(d.RemoteTag),
		keyInviteCSeq: []byte(strconv.FormatUint(uint64(d.InviteCSeq), 10)),
		keyRemoteCSeq: []byte(strconv.FormatUint(uint64(d.RemoteCSeq), 10)),
		keyState:      []byte(d.State),
		keyRouteSet:   []byte(strings.Join(d.RouteSet, "\n")),
		keyTarget:     []byte(d.Target),
		keyCreated:    []byte(strconv.FormatInt(d.CreatedMS, 10)),
	}
}

// Save puts d's fields into tx; only those that changed become changes.
func (d *Dialog) Save(tx *Tx) {
	for k, v := range d.Items() {
		tx.Put(k, v)
	}
}

// decodeDialog is the inverse of Items. A stored dialog missing a field is
// an error: it would be checked against nothing.
func decodeDialog(callID string, items map[string][]byte) (*Dialog, error) {
	for _, k := range []string{keyLocalTag, keyRemoteTag, keyInviteCSeq, keyRemoteCSeq, keyState} {
		if _, ok := items[k]; !ok {
			return nil, fmt.Errorf("dialog %q: stored item %q missing", callID, k)
		}
	}
	d := &Dialog{CallID: callID, LocalTag: string(items[keyLocalTag]), RemoteTag: string(items[keyRemoteTag]),
		State: string(items[keyState]), Target: string(items[keyTarget])}
	var err error
	if d.InviteCSeq, err = parseCSeq(items[keyInviteCSeq]); err != nil {
		return nil, fmt.Errorf("dialog %q: %s: %w", callID, keyInviteCSeq, err)
	}
	if d.RemoteCSeq, err = parseCSeq(items[keyRemoteCSeq]); err != nil {
		return nil, fmt.Errorf("dialog %q: %s: %w", callID, keyRemoteCSeq, err)
	}
	if rs := string(items[keyRouteSet]); rs != "" {
		d.RouteSet = strings.Split(rs, "\n")
	}
	if c := items[keyCreated]; len(c) > 0 {
		d.CreatedMS, _ = strconv.ParseInt(string(c), 10, 64)
	}
	return d, nil
}

func parseCSeq(b []byte) (uint32, error) {
	n, err := strconv.ParseUint(string(b), 10, 32)
	return uint32(n), err
}

// newDialog is the dialog an initial INVITE creates (RFC 3261 §12.1.1): the
// route set is the request's Record-Route values in order, the remote target
// its Contact.
func newDialog(req *sip.Request, localTag string, nowMS int64) (*Dialog, error) {
	from, cseq := req.From(), req.CSeq()
	if from == nil || cseq == nil || req.CallID() == nil {
		return nil, fmt.Errorf("INVITE without From, CSeq or Call-ID")
	}
	remoteTag, _ := from.Params.Get("tag")
	if remoteTag == "" {
		return nil, fmt.Errorf("INVITE without a From tag")
	}
	d := &Dialog{CallID: req.CallID().Value(), LocalTag: localTag, RemoteTag: remoteTag,
		InviteCSeq: cseq.SeqNo, RemoteCSeq: cseq.SeqNo, State: stateAnswered, CreatedMS: nowMS}
	for _, h := range req.GetHeaders("Record-Route") {
		d.RouteSet = append(d.RouteSet, h.Value())
	}
	if c := req.Contact(); c != nil {
		d.Target = c.Address.String()
	}
	return d, nil
}

// checkRequest checks an in-dialog request against the dialog (RFC 3261
// §12.2.2): the tags must name this dialog (else 481) and the CSeq must be
// the INVITE's for an ACK, above the last one for anything else (else 500).
// It returns the status to answer with and a reason, or 0.
func (d *Dialog) checkRequest(req *sip.Request) (int, string) {
	from, to, cseq := req.From(), req.To(), req.CSeq()
	if from == nil || to == nil || cseq == nil {
		return sip.StatusBadRequest, "missing From, To or CSeq"
	}
	ft, _ := from.Params.Get("tag")
	tt, _ := to.Params.Get("tag")
	if ft != d.RemoteTag || tt != d.LocalTag {
		return sip.StatusCallTransactionDoesNotExists, "tags do not match the dialog"
	}
	if req.IsAck() {
		if cseq.SeqNo != d.InviteCSeq {
			return sip.StatusCallTransactionDoesNotExists, "ACK CSeq does not match the INVITE's"
		}
		return 0, ""
	}
	if cseq.SeqNo <= d.RemoteCSeq {
		return sip.StatusInternalServerError, fmt.Sprintf("CSeq %d not above %d", cseq.SeqNo, d.RemoteCSeq)
	}
	return 0, ""
}
