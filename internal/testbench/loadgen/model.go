package loadgen

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"
)

// sessionState is a session's state as a node holds it: its attributes and the
// entries appended to its history, in order.
type sessionState struct {
	Attrs   map[string]string
	History []string
}

// digest is a digest of a sessionState; equal states have equal digests (a nil and
// an empty map or slice are equal).
type digest [16]byte

func (d digest) String() string { return fmt.Sprintf("%x", d[:6]) }

// digest returns the digest of s.
func (s sessionState) digest() digest { return StateDigest(s.Attrs, s.History) }

// StateDigest is the digest of a session state of the reference node: its
// attributes and history entries, length-prefixed, attributes in key order, in
// 16 bytes of SHA-256. Equal states have equal digests (a nil and an empty map
// or slice are equal). The soak's checker uses it too.
func StateDigest(attrs map[string]string, history []string) [16]byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	put := func(str string) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(str)))])
		h.Write([]byte(str))
	}
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(attrs)))])
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		put(k)
		put(attrs[k])
	}
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(history)))])
	for _, e := range history {
		put(e)
	}
	var d [16]byte
	copy(d[:], h.Sum(nil))
	return d
}

func (s sessionState) clone() sessionState {
	return sessionState{Attrs: maps.Clone(s.Attrs), History: slices.Clone(s.History)}
}

// event is the body of POST /v1/sessions/{id}/events.
type event struct {
	Type  string            `json:"type"`
	Attrs map[string]string `json:"attrs,omitempty"`
	Entry string            `json:"entry,omitempty"`
}

// attrKeys are the attributes updates choose from.
var attrKeys = []string{"state", "codec", "leg", "media", "peer", "route"}

// record is what the model knows of one version of a session: the digest
// of the state after the event that produced it and, once a node answered 200
// for that event, when.
type record struct {
	digest  digest
	ackedAt time.Time // zero while not acknowledged
}

// model is the generator's own account of one session. Versions are
// 1-based: recs[v-1] describes version v. Only the last record may be
// unacknowledged (one event in flight per session).
type model struct {
	state sessionState // the state after the last record
	recs  []record
	prev  sessionState // the state before the last record, for undo
}

// version returns the version of the last event sent (acknowledged or not).
func (m *model) version() int { return len(m.recs) }

// lastAcked returns the highest acknowledged version (0 if none).
func (m *model) lastAcked() int {
	for v := len(m.recs); v > 0; v-- {
		if !m.recs[v-1].ackedAt.IsZero() {
			return v
		}
	}
	return 0
}

// ackedBy returns the highest version acknowledged at or before t (0 if none).
func (m *model) ackedBy(t time.Time) int {
	for v := len(m.recs); v > 0; v-- {
		if a := m.recs[v-1].ackedAt; !a.IsZero() && !a.After(t) {
			return v
		}
	}
	return 0
}

// next chooses the session's next event, applies it to the model and records
// its version as sent but not acknowledged. The event sent on the wire is
// self-contained for attributes: an update carries every attribute, so a node
// that merges and one that replaces reach the same state.
// A session whose history holds maxHistory entries (when positive) gets
// updates only: its state stops growing.
func (m *model) next(rng *rand.Rand, appendRatio float64, maxHistory int) event {
	v := len(m.recs) + 1
	// History only grows by append, so its old header still reads the old
	// entries; attributes change in place and are copied.
	m.prev = sessionState{Attrs: maps.Clone(m.state.Attrs), History: m.state.History}
	var ev event
	switch {
	case v == 1:
		m.state = sessionState{Attrs: map[string]string{
			"state": "new",
			"peer":  fmt.Sprintf("p%04x", rng.IntN(1<<16)),
		}}
		ev = event{Type: "create", Attrs: maps.Clone(m.state.Attrs)}
	case rng.Float64() < appendRatio && (maxHistory <= 0 || len(m.state.History) < maxHistory):
		e := fmt.Sprintf("e%d-%06x", v, rng.IntN(1<<24))
		m.state.History = append(m.state.History, e)
		ev = event{Type: "append", Entry: e}
	default:
		if m.state.Attrs == nil {
			m.state.Attrs = map[string]string{}
		}
		m.state.Attrs[attrKeys[rng.IntN(len(attrKeys))]] = fmt.Sprintf("v%d-%04x", v, rng.IntN(1<<16))
		ev = event{Type: "update", Attrs: maps.Clone(m.state.Attrs)}
	}
	m.recs = append(m.recs, record{digest: m.state.digest()})
	return ev
}

// undo forgets the last event sent, which a node refused without applying
// it (503), so the session's next event takes its version.
func (m *model) undo() {
	if n := len(m.recs); n > 0 && m.recs[n-1].ackedAt.IsZero() {
		m.recs = m.recs[:n-1]
		m.state = m.prev
	}
}

// ack records that a node acknowledged version v at t. It reports false
// when v is not the version last sent (the node's count differs from the
// model's).
func (m *model) ack(v int, t time.Time) bool {
	if v != len(m.recs) || v == 0 {
		return false
	}
	m.recs[v-1].ackedAt = t
	return true
}

// check is the outcome of comparing a state a node restored or returned
// with the model.
type check struct {
	// Restored is the version the node returned (0 when it had nothing).
	Restored int
	// Required is the version the node had to return at least.
	Required int
	// LastAcked is the highest version acknowledged before the check.
	LastAcked int
	// LostBeyondWindow counts acknowledged versions in (Restored, Required].
	LostBeyondWindow int
	// LostWithinWindow counts acknowledged versions above both Restored and
	// Required: lost, but inside the durability window.
	LostWithinWindow int
	// OldestLost is when the oldest acknowledged version above Restored was
	// acknowledged; zero when none was lost.
	OldestLost time.Time
	// Corrupt is set when the returned state is not the model's state at
	// the returned version (or that version was never sent).
	Corrupt bool
	// Detail explains a corruption.
	Detail string
}

// reconcile compares (version r, state got) returned by a node with the model,
// given the version the node had to reach, and then resets the model to what
// the node holds, so load can go on from there: records above r are dropped
// and records up to r count as acknowledged from now on.
func (m *model) reconcile(r int, got sessionState, required int, now time.Time) check {
	c := check{Restored: r, Required: required, LastAcked: m.lastAcked()}
	d := got.digest()
	switch {
	case r < 0:
		c.Corrupt, c.Detail = true, fmt.Sprintf("negative version %d", r)
	case r > len(m.recs):
		c.Corrupt, c.Detail = true, fmt.Sprintf("version %d was never sent (last sent %d)", r, len(m.recs))
	case r == 0 && d != (sessionState{}).digest():
		c.Corrupt, c.Detail = true, "version 0 with a non-empty state"
	case r > 0 && d != m.recs[r-1].digest:
		c.Corrupt, c.Detail = true, fmt.Sprintf("state at version %d has digest %v, model %v", r, d, m.recs[r-1].digest)
	}
	c.LostBeyondWindow = max(0, required-max(r, 0))
	c.LostWithinWindow = max(0, c.LastAcked-max(r, required))
	if lost := max(r, 0) + 1; lost <= c.LastAcked && lost <= len(m.recs) {
		// Versions are acknowledged in order: the first lost is the oldest.
		c.OldestLost = m.recs[lost-1].ackedAt
	}

	r = max(r, 0)
	if r > len(m.recs) {
		for len(m.recs) < r {
			m.recs = append(m.recs, record{digest: d, ackedAt: now})
		}
	}
	m.recs = m.recs[:r]
	for i := range m.recs {
		if m.recs[i].ackedAt.IsZero() {
			m.recs[i].ackedAt = now
		}
	}
	if r > 0 {
		m.recs[r-1].digest = d
	}
	m.state = got.clone()
	return c
}
