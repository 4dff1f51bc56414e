package main

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// A registration is a session too, ID "aor:" + the address of record (the
// To URI's user@host), one item per binding: key "contact:" + the contact
// URI, value its expiry in Unix seconds. A node that dies takes no binding
// with it: the next REGISTER (a refresh, or a query without Contact) for the
// address of record adopts them on whichever node receives it, so a phone
// need not register again.
const (
	bindingPrefix  = "contact:"
	defaultExpires = 3600
	maxExpires     = 86400
)

// onRegister adds, refreshes, removes or lists bindings (RFC 3261 §10.3).
func (n *Node) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	n.stats.registers.Add(1)
	to := req.To()
	if to == nil {
		n.respond(req, tx, sip.StatusBadRequest, "Missing To", 0, nil)
		return
	}
	aor := to.Address.User + "@" + to.Address.Host
	if n.draining.Load() {
		n.respond(req, tx, sip.StatusServiceUnavailable, "Draining", 1, nil)
		return
	}
	if !n.a.LeaseValid() {
		n.respond(req, tx, sip.StatusServiceUnavailable, "Fenced", 1, nil)
		return
	}
	t := n.table.Begin(regPrefix + aor)
	defer t.Close()
	if !t.Resident() {
		if o := n.resolve(n.ctx, t, t.id, string(req.Method), true); o.Status != 0 {
			n.respond(req, tx, o.Status, o.Reason, o.RetryAfter, nil)
			return
		}
	}
	now := time.Now().Unix()
	current := map[string]int64{}
	for k, v := range t.Items() {
		if uri, ok := strings.CutPrefix(k, bindingPrefix); ok {
			exp, _ := strconv.ParseInt(string(v), 10, 64)
			if exp <= now {
				t.Delete(k)
				continue
			}
			current[uri] = exp
		}
	}
	headerExpires := defaultExpires
	if h := req.GetHeader("Expires"); h != nil {
		if e, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			headerExpires = e
		}
	}
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			continue
		}
		exp := headerExpires
		if e, ok := c.Params.Get("expires"); ok {
			if v, err := strconv.Atoi(e); err == nil {
				exp = v
			}
		}
		if c.Address.Wildcard {
			if exp != 0 {
				n.respond(req, tx, sip.StatusBadRequest, "Wildcard Contact Needs Expires 0", 0, nil)
				return
			}
			for uri := range current {
				t.Delete(bindingPrefix + uri)
			}
			clear(current)
			continue
		}
		uri := c.Address.String()
		if exp <= 0 {
			t.Delete(bindingPrefix + uri)
			delete(current, uri)
			continue
		}
		until := now + int64(min(exp, maxExpires))
		t.Put(bindingPrefix+uri, []byte(strconv.FormatInt(until, 10)))
		current[uri] = until
	}
	switch {
	case len(current) > 0:
	case t.Resident():
		t.End() // no binding left: nothing to keep
	default:
		// Nothing registered and nothing left to register: removals of
		// bindings nobody holds must not record an empty registration.
		t.Discard()
	}
	// Again before committing: the lease may have lapsed while the request
	// waited for the registration or adopted it.
	if !n.a.LeaseValid() {
		n.respond(req, tx, sip.StatusServiceUnavailable, "Fenced", 1, nil)
		return
	}
	if err := t.Commit(); err != nil {
		n.refused(req, tx, err)
		return
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	for _, uri := range slices.Sorted(maps.Keys(current)) {
		res.AppendHeader(sip.NewHeader("Contact", "<"+uri+">;expires="+strconv.FormatInt(current[uri]-now, 10)))
	}
	if err := tx.Respond(res); err != nil {
		n.log.Warn("respond", append(logAttrs(req), "err", err)...)
	}
}
