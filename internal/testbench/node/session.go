package node

import (
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/holdover/holdover/adapter"
)

// Item keys of a session (see the package comment).
const (
	versionKey = "meta/version"
	attrPrefix = "attr/"
	histPrefix = "hist/"
	// histDigits is the width of a history index; it keeps keys in index order.
	histDigits = 8
	// MaxHistory is the most history entries a session can hold.
	MaxHistory = 100_000_000
	// minKeyBytes is the longest fixed key ("hist/00000000"): the node needs
	// HOLDOVER_MAX_KEY_BYTES to be at least this.
	minKeyBytes = len(histPrefix) + histDigits
)

// Session is one session's state. A Session held by the Table is never
// modified: a transaction works on a copy and the commit swaps it in.
type Session struct {
	ID      string
	Version uint64
	Attrs   map[string]string
	History []string
}

func histKey(i int) string { return fmt.Sprintf("%s%0*d", histPrefix, histDigits, i) }

// items returns all of s as items, in no particular order.
func (s *Session) items() []adapter.Change {
	out := make([]adapter.Change, 0, 1+len(s.Attrs)+len(s.History))
	out = append(out, put(versionKey, strconv.FormatUint(s.Version, 10)))
	for k, v := range s.Attrs {
		out = append(out, put(attrPrefix+k, v))
	}
	for i, e := range s.History {
		out = append(out, put(histKey(i), e))
	}
	return out
}

func put(k, v string) adapter.Change { return adapter.Change{Key: k, Value: []byte(v)} }

// decodeSession rebuilds a session from its persisted items (in key order,
// as Adopt and Peek return them). Keys outside the layout are ignored and
// counted in unknown; a missing or malformed version, or a gap in the
// history, is an error.
func decodeSession(id string, items []adapter.Item) (s *Session, unknown int, err error) {
	s = &Session{ID: id, Attrs: map[string]string{}}
	haveVersion := false
	for _, it := range items {
		switch {
		case it.Key == versionKey:
			v, perr := strconv.ParseUint(string(it.Value), 10, 64)
			if perr != nil {
				return nil, 0, fmt.Errorf("session %q: item %s is %q, not a version number", id, versionKey, it.Value)
			}
			s.Version, haveVersion = v, true
		case strings.HasPrefix(it.Key, attrPrefix) && len(it.Key) > len(attrPrefix):
			s.Attrs[it.Key[len(attrPrefix):]] = string(it.Value)
		case strings.HasPrefix(it.Key, histPrefix):
			i, perr := strconv.Atoi(it.Key[len(histPrefix):])
			if perr != nil || len(it.Key) != minKeyBytes {
				unknown++
				continue
			}
			if i != len(s.History) {
				return nil, 0, fmt.Errorf("session %q: history entry %d follows entry %d", id, i, len(s.History)-1)
			}
			s.History = append(s.History, string(it.Value))
		default:
			unknown++
		}
	}
	if !haveVersion {
		return nil, 0, fmt.Errorf("session %q: persisted state has no %s item", id, versionKey)
	}
	return s, unknown, nil
}

// diff returns the changes that turn base into cur, where cur was derived
// from base by a transaction: attributes may have changed and history
// entries may have been appended.
func diff(base, cur *Session) []adapter.Change {
	if base == nil {
		return cur.items()
	}
	var out []adapter.Change
	if cur.Version != base.Version {
		out = append(out, put(versionKey, strconv.FormatUint(cur.Version, 10)))
	}
	for k, v := range cur.Attrs {
		if old, ok := base.Attrs[k]; !ok || old != v {
			out = append(out, put(attrPrefix+k, v))
		}
	}
	for k := range base.Attrs {
		if _, ok := cur.Attrs[k]; !ok {
			out = append(out, adapter.Change{Key: attrPrefix + k, Delete: true})
		}
	}
	for i := len(base.History); i < len(cur.History); i++ {
		out = append(out, put(histKey(i), cur.History[i]))
	}
	return out
}

// replace returns the changes that store cur in place of whatever was
// persisted under the keys old: all of cur's items, and deletes of the old
// keys cur lacks.
func replace(old []string, cur *Session) []adapter.Change {
	out := cur.items()
	if len(old) == 0 {
		return out
	}
	keep := make(map[string]bool, len(out))
	for _, c := range out {
		keep[c.Key] = true
	}
	for _, k := range old {
		if !keep[k] {
			out = append(out, adapter.Change{Key: k, Delete: true})
		}
	}
	return out
}

// clone copies s for a transaction. The attribute map is copied; the
// history shares its backing array, which is safe because committed
// versions are only read up to their own length and only the one
// transaction holding the session's lock appends beyond it.
func (s *Session) clone() *Session {
	c := *s
	c.Attrs = maps.Clone(s.Attrs)
	if c.Attrs == nil {
		c.Attrs = map[string]string{}
	}
	return &c
}
