package soak

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Record types.
const (
	RecMeta  = "meta"  // first record: the run's parameters and fault plan
	RecOp    = "op"    // one operation of the workload
	RecFault = "fault" // one step of the nemesis
	RecFinal = "final" // a session as Cassandra holds it after the run
)

// Operation kinds (Record.Kind of an op).
const (
	OpCreate     = "create"      // create event (Gen > 1: a re-create of the ID after its end)
	OpUpdate     = "update"      // update event: sets attributes
	OpAppend     = "append"      // append event: one history entry
	OpUnset      = "unset"       // unset event: deletes attributes (items)
	OpEnd        = "end"         // end event
	OpRead       = "read"        // GET of the session on the node believed to hold it
	OpAdopt      = "adopt"       // GET ?adopt=true on another node: adoption by redirect
	OpForceAdopt = "force-adopt" // the same with force=true, while the dead node's lease is live
	OpAdoptRace  = "adopt-race"  // one of two adoptions of a session asked of two nodes at once
	OpForceLive  = "force-live"  // forced adoption from a live owner (a dispossession)
	OpProbe      = "probe"       // an event sent to a node that should no longer own the session
	// OpTakeover is a bulk takeover (POST /v1/takeover/{node}) of a failed
	// node's sessions by a survivor, once the failed node's lease expired.
	// It names no session (Node: the survivor, From: the failed node); the
	// sessions it made resident are checked by the workload's next
	// observations of them.
	OpTakeover = "takeover"
)

// Fault kinds (Record.Kind of a fault).
const (
	FaultKill        = "kill"          // SIGKILL
	FaultTerm        = "term"          // SIGTERM: graceful drain begins
	FaultKillInDrain = "kill-in-drain" // SIGKILL during the drain
	FaultDrained     = "drained"       // the process exited by itself after SIGTERM
	FaultPause       = "pause"         // SIGSTOP
	FaultResume      = "resume"        // SIGCONT
	FaultRestart     = "restart"       // the node runs again with the same node ID (Start: exec, End: ready)
	FaultStall       = "stall"         // SIGSTOP of Cassandra
	FaultStallEnd    = "stall-end"     // SIGCONT of Cassandra (Start: the stall's start, End: now)
	FaultReplace     = "replace"       // a new process with the node's ID, while the old one is stopped (Start: exec, End: ready)
	FaultPartition   = "partition"     // the node's packets to Cassandra dropped; it runs on
	FaultHeal        = "heal"          // the node reaches Cassandra again
	// FaultSelfFence: the node logged that it fenced itself (its lease
	// lapsed: a stall, a partition, a pause). The product counts a fenced
	// node as failed for what it cannot prove is its own (new sessions not
	// recorded yet are lost with it), so the checker counts it as a failure.
	FaultSelfFence = "self-fence"
)

// FenceReporter is implemented by a Cluster that sees its nodes' self-fences
// (in their logs): Run has each recorded as a FaultSelfFence of that node.
type FenceReporter interface {
	// OnSelfFence registers f, called with the node's name (ZombieSuffix
	// for the old process of a replaced node) as each fence is seen.
	OnSelfFence(f func(node string, at time.Time))
}

// ZombieSuffix marks, in Record.Node, the old process of a replaced node
// (its faults, and probes sent to it): it is not the node's current process,
// so its faults excuse nothing the current one acknowledged.
const ZombieSuffix = "~zombie"

// Outcomes of an op.
const (
	OutAck      = "ack"      // 200 to an event: acknowledged
	OutRefused  = "refused"  // an HTTP error: the event was not applied (node contract)
	OutUnknown  = "unknown"  // no answer (timeout, connection cut): applied or not
	OutObserved = "observed" // a read or adoption showed the session (Obs)
	OutAbsent   = "absent"   // the node looked the session up and found none (404)
	OutMiss     = "miss"     // a read of a node that does not hold the session resident
	OutGaveUp   = "gave-up"  // an adoption retried until its deadline without an answer
)

// Record is one line of the history (e2e/out/soak-history.jsonl).
type Record struct {
	Type string `json:"type"`
	Seq  int64  `json:"seq"` // order of writing, from 1

	Session string    `json:"session,omitempty"`
	SSeq    int       `json:"sseq,omitempty"` // the session's operation number
	Gen     int       `json:"gen,omitempty"`  // the session's generation: creates sent so far
	Kind    string    `json:"kind,omitempty"`
	Node    string    `json:"node,omitempty"` // the node the op went to (an adoption: the node that answered last); a fault's node
	From    string    `json:"from,omitempty"` // adoptions: the node believed to own the session before
	Start   time.Time `json:"start"`
	End     time.Time `json:"end,omitempty"`

	Event    *Event    `json:"event,omitempty"`
	Base     *Ref      `json:"base,omitempty"` // the state the target node was believed to hold
	Outcome  string    `json:"outcome,omitempty"`
	Status   int       `json:"status,omitempty"`
	Err      string    `json:"err,omitempty"`
	Version  uint64    `json:"version,omitempty"` // the version the node answered
	Adopted  bool      `json:"adopted,omitempty"` // the event adopted the session first
	Obs      *Observed `json:"obs,omitempty"`
	Force    bool      `json:"force,omitempty"`
	Attempts int       `json:"attempts,omitempty"`
	Detail   string    `json:"detail,omitempty"`

	Meta *Meta `json:"meta,omitempty"`
}

// Meta describes a run; the checker takes its window from it, so a history
// can be checked again by itself.
type Meta struct {
	Seed       uint64     `json:"seed"`
	Start      time.Time  `json:"start"`
	DurationMS int64      `json:"duration_ms"`
	Sessions   int        `json:"sessions"`
	Rate       float64    `json:"rate"`
	Keyspace   string     `json:"keyspace"`
	Nodes      []NodeInfo `json:"nodes"`
	// FlushDelayMS + WindowAllowanceMS is the durability window; a
	// Cassandra stall suspends it until StallRecoveryMS after the stall.
	FlushDelayMS      int64     `json:"flush_delay_ms"`
	WindowAllowanceMS int64     `json:"window_allowance_ms"`
	StallRecoveryMS   int64     `json:"stall_recovery_ms"`
	LeaseTTLMS        int64     `json:"lease_ttl_ms"`
	Plan              []Episode `json:"plan"`
	PlanDigest        string    `json:"plan_digest"`
}

// NodeInfo names a node under test.
type NodeInfo struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	URL  string `json:"url"`
}

func (m *Meta) window() time.Duration {
	return time.Duration(m.FlushDelayMS+m.WindowAllowanceMS) * time.Millisecond
}

// History appends records to a JSON-lines file and hands each to a sink
// (the online checker). It is safe for concurrent use.
type History struct {
	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	seq  int64
	sink func(Record)
	err  error
}

// CreateHistory creates (truncates) the file at path.
func CreateHistory(path string, sink func(Record)) (*History, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &History{f: f, w: bufio.NewWriterSize(f, 1<<16), sink: sink}, nil
}

// Add numbers r, writes it and passes it to the sink, in one order for both.
func (h *History) Add(r Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	r.Seq = h.seq
	b, err := json.Marshal(r)
	if err == nil {
		b = append(b, '\n')
		_, err = h.w.Write(b)
	}
	if err != nil && h.err == nil {
		h.err = fmt.Errorf("soak: write history: %w", err)
	}
	if h.sink != nil {
		h.sink(r)
	}
}

// Flush writes buffered records to the file.
func (h *History) Flush() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.w.Flush(); err != nil && h.err == nil {
		h.err = err
	}
	return h.err
}

// Close flushes and closes the file and returns the first write error.
func (h *History) Close() error {
	err := h.Flush()
	if cerr := h.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadHistory calls fn for each record of a history, in file order.
func ReadHistory(r io.Reader, fn func(Record) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("history line %d: %w", line, err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return sc.Err()
}
