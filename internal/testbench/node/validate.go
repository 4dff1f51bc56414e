package node

import (
	"fmt"
	"github.com/holdover/holdover/internal/testbench/wire"
	"strings"
)

// Limits the node enforces, from the adapter's configuration.
func (n *Node) maxAttrName() int { return n.cfg.MaxKeyBytes - len(attrPrefix) }
func (n *Node) maxValue() int    { return int(n.cfg.MaxValueBytes) }

// MaxBody is the largest request body the node reads: 1 MiB for the JSON
// around the values, plus the value limit.
func (n *Node) MaxBody() int64 { return 1<<20 + int64(n.cfg.MaxValueBytes) }

func (n *Node) checkSession(id string) error {
	if l := len(id); l == 0 || l > n.cfg.MaxSessionIDBytes {
		return overLimit("session ID", l, n.cfg.MaxSessionIDBytes, "HOLDOVER_MAX_SESSION_ID_BYTES", "")
	}
	return nil
}

// checkEvent rejects an event that is malformed or over a limit, before
// anything of it is applied.
func (n *Node) checkEvent(id string, ev wire.Event) error {
	if err := n.checkSession(id); err != nil {
		return err
	}
	switch ev.Type {
	case wire.EventCreate, wire.EventUpdate, wire.EventAppend, wire.EventEnd:
		if len(ev.Keys) > 0 { // an unknown type is named as such below
			return badInput("a %s event takes no keys", ev.Type)
		}
	}
	switch ev.Type {
	case wire.EventCreate, wire.EventUpdate:
		if ev.Entry != nil {
			return badInput("a %s event takes no entry", ev.Type)
		}
		if ev.Type == wire.EventUpdate && len(ev.Attrs) == 0 {
			return badInput("an update event needs attrs")
		}
	case wire.EventAppend:
		if ev.Entry == nil {
			return badInput("an append event needs an entry")
		}
		if len(ev.Attrs) > 0 {
			return badInput("an append event takes no attrs")
		}
		if l := len(*ev.Entry); l > n.maxValue() {
			return overLimit("entry", l, n.maxValue(), "HOLDOVER_MAX_VALUE_BYTES", "")
		}
	case wire.EventUnset:
		if len(ev.Keys) == 0 {
			return badInput("an unset event needs keys")
		}
		if ev.Entry != nil || len(ev.Attrs) > 0 {
			return badInput("an unset event takes no attrs and no entry")
		}
		for _, k := range ev.Keys {
			if err := n.checkAttrName(k); err != nil {
				return err
			}
		}
	case wire.EventEnd:
		if ev.Entry != nil || len(ev.Attrs) > 0 {
			return badInput("an end event takes no attrs and no entry")
		}
	default:
		return badInput("unknown event type %q: want %s, %s, %s, %s or %s", ev.Type, wire.EventCreate, wire.EventUpdate, wire.EventAppend, wire.EventUnset, wire.EventEnd)
	}
	for k, v := range ev.Attrs {
		if err := n.checkAttrName(k); err != nil {
			return err
		}
		if l := len(v); l > n.maxValue() {
			return overLimit(fmt.Sprintf("value of attribute %q", clip(k)), l, n.maxValue(), "HOLDOVER_MAX_VALUE_BYTES", "")
		}
	}
	return nil
}

// checkAttrName rejects an attribute name that is empty or too long.
func (n *Node) checkAttrName(k string) error {
	if l := len(k); l == 0 || l > n.maxAttrName() {
		what := fmt.Sprintf("attribute name %q", clip(k))
		if l == 0 {
			what = "attribute name"
		}
		return overLimit(what, l, n.maxAttrName(), "HOLDOVER_MAX_KEY_BYTES",
			fmt.Sprintf(" = %d, less the %d-byte %q prefix", n.cfg.MaxKeyBytes, len(attrPrefix), attrPrefix))
	}
	return nil
}

// clip shortens s for an error message.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "..."
}
