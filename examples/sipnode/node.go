package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/holdover/holdover/adapter"
)

// Node is the SIP user agent server: the dialog and registration table, the
// adapter behind it, and the handlers sipgo calls (each in a goroutine of
// its own, so a request held for a live owner holds up no other).
type Node struct {
	cfg      Config
	a        *adapter.Adapter
	table    *Table
	log      *slog.Logger
	stats    *Stats
	contact  sip.ContactHeader
	draining atomic.Bool
	ctx      context.Context // ends when the node stops serving
}

// NewNode returns a node; Attach gives it its adapter before it serves.
func NewNode(ctx context.Context, cfg Config, log *slog.Logger) *Node {
	n := &Node{cfg: cfg, table: NewTable(), log: log, stats: newStats(), ctx: ctx}
	host, port := cfg.contactHostPort()
	n.contact = sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: host, Port: port}}
	n.table.OnCommit = n.commit
	return n
}

// commit is the table's commit hook: the one place the in-memory database
// talks to holdover. Commit and End do no I/O; a refusal (ErrOverloaded,
// ErrBufferFull, a *LimitError) rolls the transaction back, and the request
// is answered 503.
func (n *Node) commit(session string, changes []adapter.Change, ended bool) error {
	if ended {
		return n.a.End(session)
	}
	return n.a.Commit(session, changes...)
}

// Hooks are the adapter callbacks the node needs.
func (n *Node) Hooks() adapter.Hooks {
	return adapter.Hooks{
		OnFenced: func(sessions []string) {
			n.log.Warn("fenced: lease not renewed; dropping sessions from memory", "sessions", len(sessions))
			go n.table.Drop(sessions...)
		},
		OnRecovered: func(lost []string) {
			n.log.Warn("lease renewed again", "adopted_by_peers", len(lost))
			// Dropped at the fence, but one may have been made resident
			// since (a request adopting it as the fence came): peers own
			// them now.
			go n.table.Drop(lost...)
		},
		OnDropped: func(session string, items int, err error) {
			n.log.Error("changes dropped", "session", session, "items", items, "err", err)
			if errors.Is(err, adapter.ErrOwnedElsewhere) {
				go n.table.Drop(session)
			}
		},
	}
}

// Register installs the handlers on srv.
func (n *Node) Register(srv *sipgo.Server) {
	srv.OnOptions(n.onOptions)
	srv.OnInvite(n.onInvite)
	srv.OnAck(n.onAck)
	srv.OnBye(n.inDialog)
	srv.OnInfo(n.inDialog)
	srv.OnUpdate(n.inDialog)
	srv.OnRegister(n.onRegister)
	srv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
		n.respond(req, tx, sip.StatusMethodNotAllowed, "Method Not Allowed", 0, nil)
	})
}

// onOptions answers the proxy's probes: 200 while the node serves, 503 once
// it drains, so the proxy stops routing to it before it releases its
// sessions.
func (n *Node) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if n.draining.Load() {
		n.respond(req, tx, sip.StatusServiceUnavailable, "Draining", 1, nil)
		return
	}
	n.respond(req, tx, sip.StatusOK, "OK", 0, nil)
}

// onInvite creates a dialog (initial INVITE) or updates one (re-INVITE).
func (n *Node) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		n.inDialog(req, tx)
		return
	}
	n.stats.invites.Add(1)
	if n.draining.Load() {
		// The proxy sends a request answered 503 "Draining" to another node.
		n.respond(req, tx, sip.StatusServiceUnavailable, "Draining", 1, nil)
		return
	}
	var fences uint64
	if n.cfg.FlushBeforeAnswer {
		// Read before the lease is checked: a fence from here on may discard
		// the dialog before it is written.
		fences = n.a.Stats().Residency.Fences
	}
	if !n.a.LeaseValid() {
		n.respond(req, tx, sip.StatusServiceUnavailable, "Fenced", 1, nil)
		return
	}
	if n.cfg.FlushBeforeAnswer {
		// The answer waits for a flush: stop the proxy's retransmissions and
		// its branch timer meanwhile.
		n.respond(req, tx, sip.StatusTrying, "Trying", 0, nil)
	}
	d, err := newDialog(req, randomTag(), time.Now().UnixMilli())
	if err != nil {
		n.respond(req, tx, sip.StatusBadRequest, err.Error(), 0, nil)
		return
	}
	// A new Call-ID is new everywhere (RFC 3261 §8.1.1.4): no Adopt. A
	// second initial INVITE for a Call-ID this node holds is a merged
	// request (§8.2.2.2).
	session := dialogPrefix + d.CallID
	t := n.table.Begin(session)
	defer t.Close()
	if t.Resident() {
		n.respond(req, tx, sip.StatusLoopDetected, "Loop Detected", 0, nil)
		return
	}
	d.Save(t)
	if err := t.Commit(); err != nil {
		n.refused(req, tx, err)
		return
	}
	n.log.Info("dialog created", append(logAttrs(req), "created_unix_ms", d.CreatedMS)...)
	if n.cfg.FlushBeforeAnswer {
		// Flush waits for everything committed so far: at most one flush
		// delay plus one write. Without it a crash inside that window loses
		// a dialog its caller believes answered.
		// A flush that ends with the node fenced, or fenced since the
		// lease was checked, may have ended without the dialog: the fence
		// discards the sessions not recorded yet.
		err := n.a.Flush(n.ctx)
		if err == nil && (!n.a.LeaseValid() || n.a.Stats().Residency.Fences != fences) {
			err = adapter.ErrFenced
		}
		if err != nil {
			n.log.Warn("flush before answer failed", append(logAttrs(req), "err", err)...)
			n.respond(req, tx, sip.StatusServiceUnavailable, "Not Written", 1, nil)
			return
		}
	}
	res := sip.NewSDPResponseFromRequest(req, n.sdp())
	res.To().Params.Remove("tag")
	res.To().Params.Add("tag", d.LocalTag)
	res.AppendHeader(sip.HeaderClone(&n.contact))
	if err := tx.Respond(res); err != nil {
		n.log.Warn("respond", append(logAttrs(req), "err", err)...)
	}
	n.stats.answered.Add(1)
}

// onAck confirms a dialog. An ACK has no answer: one for a dialog found
// nowhere is dropped (the BYE that follows gets the 481).
func (n *Node) onAck(req *sip.Request, tx sip.ServerTransaction) {
	n.stats.acks.Add(1)
	cid := req.CallID()
	if cid == nil {
		return
	}
	t := n.table.Begin(dialogPrefix + cid.Value())
	defer t.Close()
	o, d := n.load(t, req)
	if o.Status != 0 {
		n.log.Info("ACK dropped", append(logAttrs(req), "status", o.Status, "reason", o.Reason)...)
		return
	}
	if st, why := d.checkRequest(req); st != 0 {
		n.log.Info("ACK dropped", append(logAttrs(req), "reason", why)...)
		return
	}
	d.State = stateConfirmed
	d.Save(t)
	if err := t.Commit(); err != nil {
		n.log.Warn("ACK not committed", append(logAttrs(req), "err", err)...)
	}
}

// inDialog serves BYE, re-INVITE, INFO and UPDATE.
func (n *Node) inDialog(req *sip.Request, tx sip.ServerTransaction) {
	n.stats.inDialog.Add(1)
	cid := req.CallID()
	if cid == nil {
		n.respond(req, tx, sip.StatusBadRequest, "Missing Call-ID", 0, nil)
		return
	}
	t := n.table.Begin(dialogPrefix + cid.Value())
	defer t.Close()
	o, d := n.load(t, req)
	if o.Status != 0 {
		n.respond(req, tx, o.Status, o.Reason, o.RetryAfter, nil)
		return
	}
	if st, why := d.checkRequest(req); st != 0 {
		n.respond(req, tx, st, why, 0, nil)
		return
	}
	if !n.a.LeaseValid() {
		n.respond(req, tx, sip.StatusServiceUnavailable, "Fenced", 1, nil)
		return
	}
	d.RemoteCSeq = req.CSeq().SeqNo
	var body []byte
	switch req.Method {
	case sip.BYE:
		t.End()
	case sip.INVITE:
		d.InviteCSeq = d.RemoteCSeq
		d.State = stateAnswered
		if c := req.Contact(); c != nil {
			d.Target = c.Address.String()
		}
		d.Save(t)
		body = n.sdp()
	default:
		d.Save(t)
	}
	if err := t.Commit(); err != nil {
		n.refused(req, tx, err)
		return
	}
	n.respond(req, tx, sip.StatusOK, "OK", 0, body)
	if o.Adopted {
		n.stats.answeredAfterAdoption(req.Method)
		n.log.Info("answered after adoption", append(logAttrs(req), "held_ms", ms(o.Held), "adopt_ms", ms(o.AdoptTime))...)
	}
	if req.Method == sip.BYE {
		n.stats.byes.Add(1)
	}
}

// load returns the dialog of t, adopting it first when it is not in memory.
func (n *Node) load(t *Tx, req *sip.Request) (outcome, *Dialog) {
	var o outcome
	if !t.Resident() {
		if n.draining.Load() {
			return outcome{Status: sip.StatusServiceUnavailable, Reason: "Draining", RetryAfter: 1}, nil
		}
		o = n.resolve(n.ctx, t, t.id, string(req.Method), false)
		if o.Status != 0 {
			return o, nil
		}
	}
	d, err := decodeDialog(req.CallID().Value(), t.Items())
	if err != nil {
		n.log.Error("stored dialog unreadable", append(logAttrs(req), "err", err)...)
		return outcome{Status: sip.StatusInternalServerError, Reason: "Dialog Unreadable"}, nil
	}
	return o, d
}

// refused answers a request whose commit the adapter refused: overload and
// a full buffer are retryable (503), anything else is the request's fault.
func (n *Node) refused(req *sip.Request, tx sip.ServerTransaction, err error) {
	n.stats.refused.Add(1)
	n.log.Warn("commit refused", append(logAttrs(req), "err", err)...)
	if errors.Is(err, adapter.ErrInvalidInput) {
		n.respond(req, tx, sip.StatusBadRequest, "Bad Request", 0, nil)
		return
	}
	n.respond(req, tx, sip.StatusServiceUnavailable, "Overloaded", 1, nil)
}

func (n *Node) respond(req *sip.Request, tx sip.ServerTransaction, status int, reason string, retryAfter int, body []byte) {
	if tx == nil {
		return
	}
	res := sip.NewResponseFromRequest(req, status, reason, body)
	if retryAfter > 0 {
		res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(retryAfter)))
	}
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	switch status {
	case sip.StatusServiceUnavailable:
		n.stats.unavailable.Add(1)
	case sip.StatusCallTransactionDoesNotExists:
		n.stats.unknown.Add(1)
	}
	if status >= 300 && req.Method != sip.OPTIONS {
		n.log.Info("refused", append(logAttrs(req), "status", status, "reason", reason)...)
	}
	if err := tx.Respond(res); err != nil {
		n.log.Warn("respond", append(logAttrs(req), "status", status, "err", err)...)
	}
}

// sdp is a minimal answer; this node carries no media.
func (n *Node) sdp() []byte {
	host, _ := n.cfg.contactHostPort()
	return fmt.Appendf(nil, "v=0\r\no=- 1 1 IN IP4 %[1]s\r\ns=holdover\r\nc=IN IP4 %[1]s\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", host)
}

func randomTag() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
