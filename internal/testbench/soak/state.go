package soak

import (
	"encoding/hex"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/holdover/holdover/internal/testbench/loadgen"
)

// State is a session's state as the reference node holds it: attributes and
// the history list. Its version is kept beside it (Ref, Observed).
type State struct {
	Attrs   map[string]string `json:"attrs"`
	History []string          `json:"history"`
}

// Digest identifies a State: equal states have equal digests (a nil and an
// empty map or list are equal). It is the hex of 16 bytes of SHA-256.
type Digest string

// Digest returns s's digest (loadgen.StateDigest, in hex).
func (s *State) Digest() Digest {
	d := loadgen.StateDigest(s.Attrs, s.History)
	return Digest(hex.EncodeToString(d[:]))
}

// Ref names one state of a session: its version and digest.
type Ref struct {
	Version uint64 `json:"version"`
	Digest  Digest `json:"digest"`
}

// Event kinds the workload sends, as the reference node names them
// (docs/node-api.md; "unset" removes attributes).
const (
	EvCreate = "create"
	EvUpdate = "update"
	EvAppend = "append"
	EvUnset  = "unset"
	EvEnd    = "end"
)

// Event is one event's payload.
type Event struct {
	Type  string            `json:"type"`
	Attrs map[string]string `json:"attrs,omitempty"`
	Entry *string           `json:"entry,omitempty"`
	Keys  []string          `json:"keys,omitempty"`
}

// apply returns the state after ev on s (nil for a create). History is
// copied, never shared with s, so states in the checker's tree stay
// immutable. It does not handle end.
func apply(s *State, ev *Event) *State {
	if ev.Type == EvCreate {
		return &State{Attrs: cloneAttrs(ev.Attrs)}
	}
	out := &State{Attrs: cloneAttrs(s.Attrs), History: s.History}
	switch ev.Type {
	case EvUpdate:
		maps.Copy(out.Attrs, ev.Attrs)
	case EvAppend:
		h := make([]string, len(s.History), len(s.History)+1)
		copy(h, s.History)
		out.History = append(h, *ev.Entry)
	case EvUnset:
		for _, k := range ev.Keys {
			delete(out.Attrs, k)
		}
	}
	return out
}

func cloneAttrs(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	maps.Copy(out, m)
	return out
}

// Observed is a session as a node or Cassandra showed it: Found false means
// the session did not exist there (404, or nothing persisted).
type Observed struct {
	Found   bool   `json:"found"`
	Version uint64 `json:"version,omitempty"`
	Digest  Digest `json:"digest,omitempty"` // for readers; the checker recomputes it
	State   *State `json:"state,omitempty"`
	// Restored is true when the node restored the state from Cassandra (an
	// adoption: the answer's "adopted"), false when it showed its memory.
	Restored bool `json:"restored,omitempty"`
	// Owner and Epoch are the ownership row of a final read; Ended is set
	// when that row marks the session ended.
	Owner string `json:"owner,omitempty"`
	Epoch uint64 `json:"epoch,omitempty"`
	Ended bool   `json:"ended,omitempty"`
	// Problem says why persisted items did not decode as a session
	// (DecodeItems' error); Raw lists them, so the checker can report them.
	Problem string   `json:"problem,omitempty"`
	Raw     []string `json:"raw,omitempty"`
}

// Item is one persisted key and value of a session, as internal/inspect
// returns them (the soak does not link the adapter).
type Item struct {
	Key   string
	Value []byte
}

// DecodeItems rebuilds a session from the items the reference node persists
// (meta/version, attr/<name>, hist/<8 digits>; see internal/testbench/node). An empty
// list is a session that does not exist.
func DecodeItems(items []Item) (Observed, error) {
	if len(items) == 0 {
		return Observed{}, nil
	}
	st := &State{Attrs: map[string]string{}}
	o := Observed{Found: true, State: st}
	haveVersion := false
	for _, it := range items {
		switch {
		case it.Key == "meta/version":
			v, err := strconv.ParseUint(string(it.Value), 10, 64)
			if err != nil {
				return o, fmt.Errorf("meta/version is %q", it.Value)
			}
			o.Version, haveVersion = v, true
		case strings.HasPrefix(it.Key, "attr/"):
			st.Attrs[it.Key[len("attr/"):]] = string(it.Value)
		case strings.HasPrefix(it.Key, "hist/"):
			i, err := strconv.Atoi(it.Key[len("hist/"):])
			if err != nil || i != len(st.History) {
				return o, fmt.Errorf("history item %s follows %d entries", it.Key, len(st.History))
			}
			st.History = append(st.History, string(it.Value))
		default:
			return o, fmt.Errorf("unknown item %s", it.Key)
		}
	}
	if !haveVersion {
		return o, fmt.Errorf("no meta/version among %d items", len(items))
	}
	o.Digest = st.Digest()
	return o, nil
}
