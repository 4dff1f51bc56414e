// Command adopt shows what a node does with an event for a session it does
// not hold: it calls adapter.Adopt and handles every outcome (HandleEvent
// below), and it reads related state it only needs to look at with Peek.
//
//	go run ./examples/adopt
//
// To have something to adopt it plays two other nodes (peers.go): one that
// crashes (a child process killed with SIGKILL while a change is still in
// its buffer) and one that shuts down gracefully, releasing its sessions.
// The crashed node's sessions become adoptable when its lease expires, so the
// example shortens the lease to 2s.
//
// It reads the HOLDOVER_* variables like any node. Unless they are already
// set it uses HOLDOVER_KEYSPACE=holdover_examples,
// HOLDOVER_NODE_ID=example-adopt, HOLDOVER_LEASE_TTL=2s and
// HOLDOVER_STATE_TTL=1h; Cassandra defaults to 127.0.0.1:9042
// (HOLDOVER_CASSANDRA_HOSTS, HOLDOVER_CASSANDRA_PORT).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/holdover/holdover/adapter"
)

// Action is what the host does with an event after HandleEvent.
type Action int

const (
	Served  Action = iota // processed here
	Forward               // send the event to Result.Owner
	Reject                // refuse it (503): the balancer retries it elsewhere or later
)

// Result is HandleEvent's decision.
type Result struct {
	Action Action
	Owner  string // with Forward: the node that owns the session
	Note   string // what happened, for the log
}

// Host is this node: the adapter and the sessions resident in its memory.
// Events are served concurrently, so local is guarded by mu.
type Host struct {
	a     *adapter.Adapter
	mu    sync.Mutex
	local map[string]map[string][]byte
}

// NewHost returns a host with no session resident.
func NewHost(a *adapter.Adapter) *Host {
	return &Host{a: a, local: map[string]map[string][]byte{}}
}

// resident reports whether session is in this node's memory.
func (h *Host) resident(session string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.local[session]
	return ok
}

// restore makes state session's resident copy unless another event for the
// same session made one first (two events adopting it at once: the second
// finds it already owned and reloads it); that copy may hold changes since,
// so it is kept.
func (h *Host) restore(session string, state map[string][]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.local[session]; !ok {
		h.local[session] = state
	}
}

// State returns session's resident copy (nil when not resident).
func (h *Host) State(session string) map[string][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.local[session]
}

// drop removes session's resident copy (the host lost or evicted it).
func (h *Host) drop(session string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.local, session)
}

// HandleEvent is the code to copy: an event arrived for session, which is not
// in this node's memory (a load balancer redirected it, or it is new).
func (h *Host) HandleEvent(ctx context.Context, session string) (Result, error) {
	if h.resident(session) {
		return Result{Action: Served, Note: "resident here"}, nil
	}
	// Fresh: ErrNotFound creates the session here, so it must not be the
	// negative cache's answer from moments ago, which a peer's create since
	// may have made stale (this node would acknowledge the create, then drop
	// it as owned elsewhere).
	s, err := h.a.Adopt(ctx, session, adapter.AdoptOptions{Fresh: true})
	var elsewhere *adapter.OwnedElsewhereError
	switch {
	case err == nil:
		// This node owns it now; no write of the previous owner can surface
		// any more. Restore the state, then process the event as if this node
		// had always owned the session.
		h.restore(session, s.Map())
		return Result{Action: Served, Note: fmt.Sprintf("adopted from %s at epoch %d, restored %s",
			s.PreviousOwner, s.Epoch, describe(s.Map()))}, nil

	case errors.Is(err, adapter.ErrNotFound):
		// Nothing persisted: a new session (or one that ended or expired).
		return h.create(session, "not found anywhere, created fresh here")

	case errors.As(err, &elsewhere):
		// A live node owns it (elsewhere.Live), or another node won the race
		// to adopt it (elsewhere.Raced): forward the event to that node.
		return Result{Action: Forward, Owner: elsewhere.Owner, Note: fmt.Sprintf(
			"owned by %s (epoch %d, lease live: %v), forward the event there", elsewhere.Owner, elsewhere.Epoch, elsewhere.Live)}, nil

	case errors.Is(err, adapter.ErrAlreadyOwned):
		// The adapter says this node owns it, but the host no longer has it in
		// memory (it evicted or lost it). Reload it: Flush first, so that
		// Peek sees every change this node committed.
		if err := h.a.Flush(ctx); err != nil {
			return Result{}, err
		}
		p, err := h.a.Peek(ctx, session)
		if errors.Is(err, adapter.ErrNotFound) {
			// It ended here moments ago (its End was not flushed when Adopt
			// looked): a new session with the same ID.
			return h.create(session, "ended here moments ago, created fresh")
		}
		if err != nil {
			return Result{}, err
		}
		h.restore(session, p.Map())
		return Result{Action: Served, Note: "already owned here, reloaded " + describe(p.Map())}, nil

	case errors.Is(err, adapter.ErrFenced):
		// This node could not renew its lease (a network partition, a long
		// pause), so peers may be adopting its sessions: it must not take on
		// more. Hooks.OnFenced has told the host which sessions to stop
		// serving; refuse the event so that a healthy node gets it.
		return Result{Action: Reject, Note: "this node is fenced, refuse the event"}, nil

	default:
		// Cassandra trouble (timeout, unavailable replicas). Adopt is safe to
		// retry; until then refuse the event.
		return Result{Action: Reject, Note: "adopt failed: " + err.Error()}, nil
	}
}

// create starts session afresh here: its first commit records this node as
// the owner. A commit refused for load (ErrOverloaded, ErrBufferFull) is
// refused to the event's sender, to be retried.
func (h *Host) create(session, note string) (Result, error) {
	state := map[string][]byte{"state": []byte("trying")}
	err := h.a.Commit(session, adapter.Change{Key: "state", Value: state["state"]})
	if errors.Is(err, adapter.ErrOverloaded) || errors.Is(err, adapter.ErrBufferFull) {
		return Result{Action: Reject, Note: "commit refused for load: " + err.Error()}, nil
	}
	if err != nil {
		return Result{}, err
	}
	h.restore(session, state)
	return Result{Action: Served, Note: note}, nil
}

func main() {
	if os.Getenv(roleVar) == roleCrashingPeer {
		crashingPeer() // the child process of startCrashingPeer
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "adopt:", err)
		os.Exit(1)
	}
}

func run() error {
	setDefault("HOLDOVER_KEYSPACE", "holdover_examples")
	setDefault("HOLDOVER_NODE_ID", "example-adopt")
	setDefault("HOLDOVER_LEASE_TTL", "2s")
	setDefault("HOLDOVER_STATE_TTL", "1h")
	cfg, err := adapter.ConfigFromEnv()
	if err != nil {
		return err
	}
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	a, err := adapter.Open(ctx, cfg, adapter.WithLogger(logger))
	if err != nil {
		return err
	}
	h := NewHost(a)
	fmt.Printf("this node: %s (keyspace %s, lease TTL %s)\n", a.NodeID(), cfg.Keyspace, cfg.LeaseTTL)

	tag := randomHex() // keeps runs apart in a shared keyspace
	crashed, fresh := "dialog-"+tag+"-1", "dialog-"+tag+"-new"
	handedOver, account := "dialog-"+tag+"-2", "account-"+tag

	// The other nodes.
	live, err := openLivePeer(ctx, cfg, logger, handedOver, account)
	if err != nil {
		return err
	}
	fmt.Printf("peer %s: owns %s and %s\n", live.NodeID(), handedOver, account)
	crashedNode := cfg.NodeID + "-crashed-peer"
	if err := startCrashingPeer(crashedNode, crashed, account); err != nil {
		return err
	}
	fmt.Printf("peer %s: wrote %s (state=answered), committed state=on-hold, then was killed before writing it\n", crashedNode, crashed)

	// Events arrive.
	show := func(session string, r Result) { fmt.Printf("event for %s: %s\n", session, r.Note) }
	handle := func(session string) (Result, error) {
		r, err := h.HandleEvent(ctx, session)
		if err == nil {
			show(session, r)
		}
		return r, err
	}

	if _, err := handle(fresh); err != nil {
		return err
	}
	if _, err := handle(handedOver); err != nil {
		return err
	}

	// The crashed node's session: while its lease lasts the adapter names it
	// as the owner. The balancer's forward fails (it is dead) and the event
	// comes back, until the lease expires and this node adopts the session.
	deadline := time.Now().Add(4*cfg.LeaseTTL + 10*time.Second)
	var last string
	for {
		r, err := h.HandleEvent(ctx, crashed)
		if err != nil {
			return err
		}
		if r.Note != last {
			show(crashed, r)
			last = r.Note
		}
		if r.Action == Served {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not adoptable by %s", crashed, deadline)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := string(h.State(crashed)["state"]); got != "on-hold" {
		fmt.Printf("  state=%s, not on-hold: the change committed inside the crashed node's flush window was lost, as documented\n", got)
	}

	// Related state the event needs but this node does not take over: Peek.
	ref := string(h.State(crashed)["account"])
	p, err := a.Peek(ctx, ref)
	if err != nil {
		return err
	}
	fmt.Printf("related %s: balance=%s, owner %s (read with Peek, not adopted)\n", ref, p.Map()["balance"], p.Owner)

	// The live peer shuts down gracefully: its sessions are released, so
	// they are adopted at once, without waiting for its lease.
	rep, err := live.Close(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("peer %s: shut down gracefully, released %d sessions\n", live.NodeID(), rep.Released)
	if _, err := handle(handedOver); err != nil {
		return err
	}

	// The host loses its in-memory copy of a session it owns.
	h.drop(handedOver)
	if _, err := handle(handedOver); err != nil {
		return err
	}

	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	crep, err := a.Close(closeCtx)
	if err != nil {
		return err
	}
	fmt.Printf("this node: shut down gracefully, released %d sessions, %d left unwritten\n", crep.Released, len(crep.Unwritten.Sessions))
	return nil
}

// describe prints items as key=value pairs in key order.
func describe(items map[string][]byte) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(items)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", k, items[k])
	}
	return b.String()
}

func randomHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func setDefault(name, value string) {
	if os.Getenv(name) == "" {
		os.Setenv(name, value)
	}
}
