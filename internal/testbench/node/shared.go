package node

import (
	"github.com/holdover/holdover/internal/testbench/wire"

	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/holdover/holdover/adapter"
)

// A shared family's sessions (docs/families.md) bypass the session table:
// they have no owner, no version and no history, only keys and values that
// every node writes and reads through the adapter (CommitShared, EndShared,
// Shared). The node adds the HTTP boundary: it decodes and checks the body,
// then hands one write to the adapter, which accepts all of it or none.

// The shared endpoints' bodies (wire.SharedWrite, SharedView, SharedList).
type (
	SharedWrite = wire.SharedWrite
	SharedView  = wire.SharedView
	SharedList  = wire.SharedList
)

// WriteShared applies w to shared session id as one adapter.CommitShared:
// this node's view shows it at once and the write is durable within the
// family's flush delay; other nodes see it within that delay plus their
// refresh interval. A session of no shared family is ErrInvalidInput.
func (n *Node) WriteShared(id string, w SharedWrite) error {
	a, err := n.adapter()
	if err != nil {
		return err
	}
	if err := n.checkSharedWrite(id, w); err != nil {
		return err
	}
	changes := make([]adapter.Change, 0, len(w.Set)+len(w.Delete))
	for _, k := range slices.Sorted(maps.Keys(w.Set)) {
		changes = append(changes, put(k, w.Set[k]))
	}
	for _, k := range w.Delete {
		changes = append(changes, adapter.Change{Key: k, Delete: true})
	}
	if err := a.CommitShared(id, changes...); err != nil {
		return fmt.Errorf("shared session %q: write not applied: %w", id, err)
	}
	return nil
}

// EndShared deletes every key of shared session id on every node, unless a
// later write of a key wins over it (adapter.EndShared).
func (n *Node) EndShared(id string) error {
	a, err := n.adapter()
	if err != nil {
		return err
	}
	if err := n.checkSession(id); err != nil {
		return err
	}
	if err := a.EndShared(id); err != nil {
		return fmt.Errorf("shared session %q: end not applied: %w", id, err)
	}
	return nil
}

// Shared returns this node's view of shared session id.
func (n *Node) Shared(id string) (SharedView, error) {
	a, err := n.adapter()
	if err != nil {
		return SharedView{}, err
	}
	if err := n.checkSession(id); err != nil {
		return SharedView{}, err
	}
	m, err := a.Shared(id)
	if err != nil {
		return SharedView{}, err
	}
	v := SharedView{Session: id, Node: n.cfg.NodeID, Values: make(map[string]string, len(m))}
	for k, b := range m {
		v.Values[k] = string(b)
	}
	return v, nil
}

// SharedSessions lists the sessions of shared family family in this node's
// view.
func (n *Node) SharedSessions(family string) (SharedList, error) {
	a, err := n.adapter()
	if err != nil {
		return SharedList{}, err
	}
	if family == "" {
		return SharedList{}, badInput("family is required: GET /v1/shared?family=NAME")
	}
	ids, err := a.SharedSessions(family)
	if err != nil {
		return SharedList{}, err
	}
	if ids == nil {
		ids = []string{}
	}
	return SharedList{Family: family, Node: n.cfg.NodeID, Sessions: ids}, nil
}

// checkSharedWrite rejects a shared write that is empty, malformed or over a
// limit, naming the field, before anything of it is applied. Shared keys are
// the adapter's keys as they are: no prefix of the node's layout.
func (n *Node) checkSharedWrite(id string, w SharedWrite) error {
	if err := n.checkSession(id); err != nil {
		return err
	}
	if len(w.Set) == 0 && len(w.Delete) == 0 {
		return badInput("a shared write needs set (an object of keys and values) or delete (an array of keys)")
	}
	for _, k := range slices.Sorted(maps.Keys(w.Set)) {
		if err := n.checkSharedKey("set", k); err != nil {
			return err
		}
		if l := len(w.Set[k]); l > n.maxValue() {
			return overLimit(fmt.Sprintf("set: value of key %q", clip(k)), l, n.maxValue(), "HOLDOVER_MAX_VALUE_BYTES", "")
		}
	}
	for _, k := range w.Delete {
		if err := n.checkSharedKey("delete", k); err != nil {
			return err
		}
		if _, ok := w.Set[k]; ok {
			return badInput("key %q is in both set and delete", clip(k))
		}
	}
	return nil
}

// checkSharedKey rejects a key of field that is empty or too long.
func (n *Node) checkSharedKey(field, k string) error {
	if l := len(k); l == 0 || l > n.cfg.MaxKeyBytes {
		what := fmt.Sprintf("%s: key %q", field, clip(k))
		if l == 0 {
			what = field + ": key"
		}
		return overLimit(what, l, n.cfg.MaxKeyBytes, "HOLDOVER_MAX_KEY_BYTES", "")
	}
	return nil
}

// onSharedChange is the adapter's OnSharedChange: another node changed a
// shared family (or some of it expired), seen at this node's re-read.
func (n *Node) onSharedChange(family string, changes []adapter.SharedChange) {
	deleted := 0
	for _, c := range changes {
		if c.Deleted {
			deleted++
		}
	}
	n.log.Info("shared family changed by other nodes", "family", family, "changes", len(changes), "deleted", deleted)
	n.tel.sharedChanges(context.Background(), family, len(changes))
}

func (n *Node) handleSharedPut(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var sw SharedWrite
	err := n.decodeBody(w, r, &sw, sharedShape)
	if err == nil {
		if err = n.WriteShared(id, sw); err == nil {
			n.writeShared(w, id)
			return
		}
	}
	status := n.writeError(w, err)
	n.log.Debug("shared write refused", "session", id, "status", status, "err", err)
}

func (n *Node) handleSharedGet(w http.ResponseWriter, r *http.Request) {
	n.writeShared(w, r.PathValue("id"))
}

func (n *Node) handleSharedDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := n.EndShared(id); err != nil {
		n.writeError(w, err)
		return
	}
	n.writeShared(w, id)
}

// writeShared answers a write with this node's view of the session after it.
func (n *Node) writeShared(w http.ResponseWriter, id string) {
	v, err := n.Shared(id)
	if err != nil {
		n.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (n *Node) handleSharedList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "family" {
			n.writeError(w, badInput("unknown query parameter %q; GET /v1/shared takes family", clip(k)))
			return
		}
	}
	l, err := n.SharedSessions(q.Get("family"))
	if err != nil {
		n.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}
