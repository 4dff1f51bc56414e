// Package wire holds the reference node's HTTP/JSON message types
// (docs/node-api.md): what its clients (the load generator, the soak, the
// demo, the drills) send and read. It imports nothing of the node, so a
// client does not link the adapter or the Cassandra driver.
package wire

// Event types.
const (
	EventCreate = "create"
	EventUpdate = "update"
	EventAppend = "append"
	EventUnset  = "unset"
	EventEnd    = "end"
)

// Event is one event for a session (the body of POST /v1/sessions/{id}/events).
type Event struct {
	Type  string            `json:"type"`
	Attrs map[string]string `json:"attrs,omitempty"`
	Entry *string           `json:"entry,omitempty"`
	// Keys names the attributes an unset event removes.
	Keys []string `json:"keys,omitempty"`
}

// Result says what an applied event did.
type Result struct {
	Session string `json:"session"`
	Node    string `json:"node"`
	// Version is the session's version after the event (for end, the
	// version the ended session reached).
	Version uint64 `json:"version"`
	// Adopted is true when the event first had to adopt the session from
	// Cassandra (for create: it claimed a stale session under the same ID).
	Adopted bool `json:"adopted"`
}

// View is a resident session as GET /v1/sessions/{id} returns it.
type View struct {
	Session  string            `json:"session"`
	Node     string            `json:"node"`
	Version  uint64            `json:"version"`
	Attrs    map[string]string `json:"attrs"`
	History  []string          `json:"history"`
	Resident bool              `json:"resident"`
	Adopted  bool              `json:"adopted"`
}

// Info is the body of GET /v1/info.
type Info struct {
	Node         string `json:"node"`
	FlushDelayMS int64  `json:"flush_delay_ms"`
	Keyspace     string `json:"keyspace"`
	Sessions     int    `json:"sessions"` // resident sessions
	// Families is HOLDOVER_FAMILIES as the node reads it; "" when none is
	// configured.
	Families string `json:"families"`
	// FamilyStats lists the sessions of no family first (Name ""), then each
	// configured family in HOLDOVER_FAMILIES's order.
	FamilyStats []FamilyInfo `json:"family_stats"`
}

// FamilyInfo is one family's policy and its figures in the adapter's buffer
// at the time of the request.
type FamilyInfo struct {
	Name   string `json:"name"` // "" for the sessions of no family
	Shared bool   `json:"shared"`
	// FlushDelayMS is how long the family's changes wait before their write
	// starts: its delay, or HOLDOVER_FLUSH_DELAY.
	FlushDelayMS int64 `json:"flush_delay_ms"`
	// PendingSessions counts the family's sessions with unwritten changes;
	// OldestPendingAgeMS is the age of its oldest unwritten change (its live
	// data-loss window), 0 when nothing is pending.
	PendingSessions    int     `json:"pending_sessions"`
	OldestPendingAgeMS float64 `json:"oldest_pending_age_ms"`
	// Overloaded reports whether the family's commits are refused now
	// because its writes lag beyond its window bound (503).
	Overloaded bool `json:"overloaded"`
}

// SharedWrite is the body of PUT /v1/shared/{id}: the keys to set and the
// keys to delete, applied as one write.
type SharedWrite struct {
	Set    map[string]string `json:"set,omitempty"`
	Delete []string          `json:"delete,omitempty"`
}

// SharedView is a shared session as GET /v1/shared/{id} returns it: this
// node's view of every key (empty for a session nobody wrote).
type SharedView struct {
	Session string            `json:"session"`
	Node    string            `json:"node"`
	Values  map[string]string `json:"values"`
}

// SharedList is the answer to GET /v1/shared?family=NAME: the sessions of a
// shared family that hold a key in this node's view, sorted.
type SharedList struct {
	Family   string   `json:"family"`
	Node     string   `json:"node"`
	Sessions []string `json:"sessions"`
}

// TakeoverResult is the answer to POST /v1/takeover/{node}.
type TakeoverResult struct {
	From string `json:"from"` // the node taken over
	Node string `json:"node"` // this node
	// Listed counts the sessions the owner index listed under From; Adopted
	// those this node adopted (and made resident: Restored of them, the rest
	// recorded but never written, or not in the node's layout); Skipped those
	// gone, ended or owned by another node meanwhile; Failed those whose
	// adoption failed (Errors: up to 10).
	Listed     int      `json:"listed"`
	Adopted    int      `json:"adopted"`
	Restored   int      `json:"restored"`
	Skipped    int      `json:"skipped"`
	Failed     int      `json:"failed"`
	Errors     []string `json:"errors,omitempty"`
	DurationMS float64  `json:"duration_ms"`
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
	// Owner is the node owning the session (409).
	Owner string `json:"owner,omitempty"`
	// Limit is the configured limit a 400 or 413 exceeded, in bytes, and
	// Var the variable setting it.
	Limit int    `json:"limit,omitempty"`
	Var   string `json:"var,omitempty"`
}
