package adapter_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/holdover/holdover/adapter"
)

// newCallID returns a fresh session ID, as a host does for each new call.
func newCallID() string { return "call-" + rand.Text()[:10] }

// openNode opens a node named id with the HOLDOVER_* configuration.
func openNode(ctx context.Context, id string) (*adapter.Adapter, error) {
	cfg, err := adapter.ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	cfg.NodeID = id
	return adapter.Open(ctx, cfg)
}

// The life of a node: open, commit from the in-memory database's commit
// hook, flush when something must be durable now, close on shutdown.
func Example() {
	ctx := context.Background()

	// Every setting comes from a HOLDOVER_* variable (see Config); NodeID
	// must be stable across restarts and unique among live nodes.
	cfg, err := adapter.ConfigFromEnv()
	if err != nil {
		fmt.Println(err) // a *ConfigError listing every bad variable
		return
	}
	cfg.NodeID = "node-a"
	a, err := adapter.Open(ctx, cfg)
	if err != nil {
		fmt.Println("open:", err)
		return
	}

	// In the commit hook: one call per committed transaction. No I/O.
	call := newCallID()
	_ = a.Commit(call,
		adapter.Change{Key: "state", Value: []byte("ringing")},
		adapter.Change{Key: "caller", Value: []byte("sip:alice@example.com")})
	_ = a.Commit(call, adapter.Change{Key: "state", Value: []byte("answered")})

	// Flush returns once everything committed before it is in Cassandra.
	if err := a.Flush(ctx); err != nil {
		fmt.Println("flush:", err)
		return
	}
	s, err := a.Peek(ctx, call)
	if err != nil {
		fmt.Println("peek:", err)
		return
	}
	fmt.Printf("persisted: owner %s, epoch %d\n", s.Owner, s.Epoch)
	for _, it := range s.Items {
		fmt.Printf("  %s=%s\n", it.Key, it.Value)
	}

	// Close drains the buffer and releases the sessions to peers.
	rep, err := a.Close(ctx)
	if err != nil {
		fmt.Println("close:", err)
		return
	}
	fmt.Printf("closed: %d released, %d unwritten\n", rep.Released, len(rep.Unwritten.Sessions))
	// Output:
	// persisted: owner node-a, epoch 1
	//   caller=sip:alice@example.com
	//   state=answered
	// closed: 1 released, 0 unwritten
}

// Commit refuses bad input at the call, naming the field and the limit, and
// keeps only the latest value of a key until it is written.
func ExampleAdapter_Commit() {
	ctx := context.Background()
	cfg, err := adapter.ConfigFromEnv()
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg.NodeID = "node-a"
	cfg.FlushDelay = time.Second
	a, err := adapter.Open(ctx, cfg)
	if err != nil {
		fmt.Println("open:", err)
		return
	}
	defer a.Close(ctx)

	call := newCallID()
	for i := range 100 {
		_ = a.Commit(call, adapter.Change{Key: "cseq", Value: fmt.Appendf(nil, "%d", i)})
	}
	st := a.Stats().Buffer
	fmt.Printf("100 commits of one key: %d pending, %d coalesced\n", st.PendingItems, st.Coalesced)

	err = a.Commit(call, adapter.Change{Key: "", Value: []byte("x")})
	var limit *adapter.LimitError
	fmt.Println(errors.Is(err, adapter.ErrInvalidInput), errors.As(err, &limit), limit.Field)
	fmt.Println(err)
	// Output:
	// 100 commits of one key: 1 pending, 99 coalesced
	// true true key
	// change 0: key is empty; it must be 1 to 256 bytes
}

// Adopt's outcomes, as a node handles an event for a session it does not
// hold: create it, forward the event to its live owner, or restore it.
func ExampleAdapter_Adopt() {
	ctx := context.Background()
	nodeA, err := openNode(ctx, "node-a")
	if err != nil {
		fmt.Println(err)
		return
	}
	nodeB, err := openNode(ctx, "node-b")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nodeB.Close(ctx)

	// handle is what node-b runs when an event for session arrives and the
	// session is not in its memory.
	handle := func(session string) {
		s, err := nodeB.Adopt(ctx, session)
		var elsewhere *adapter.OwnedElsewhereError
		switch {
		case err == nil:
			// Restore s.Items into the in-memory database, then process
			// the event as if this node had always owned the session.
			fmt.Printf("adopted from %s at epoch %d: state=%s\n", s.PreviousOwner, s.Epoch, s.Map()["state"])
		case errors.Is(err, adapter.ErrNotFound):
			fmt.Println("not found: a new session, create it here")
		case errors.As(err, &elsewhere):
			fmt.Printf("owned by %s (lease live: %v): forward the event there\n", elsewhere.Owner, elsewhere.Live)
		case errors.Is(err, adapter.ErrAlreadyOwned):
			fmt.Println("already owned by this node")
		case errors.Is(err, adapter.ErrFenced):
			// This node's lease lapsed: it must not take on sessions.
			fmt.Println("fenced: refuse the event")
		default:
			fmt.Println("cassandra error, retry:", err)
		}
	}

	handle(newCallID()) // nobody has it

	call := newCallID()
	_ = nodeA.Commit(call, adapter.Change{Key: "state", Value: []byte("answered")})
	_ = nodeA.Flush(ctx)
	handle(call) // node-a is alive and owns it

	_, _ = nodeA.Close(ctx) // graceful shutdown releases it
	handle(call)            // adopted at once, without waiting for node-a's lease
	handle(call)
	// Output:
	// not found: a new session, create it here
	// owned by node-a (lease live: true): forward the event there
	// adopted from node-a at epoch 2: state=answered
	// already owned by this node
}

// Peek reads related state (an entity a session refers to) without taking
// it over from its owner.
func ExampleAdapter_Peek() {
	ctx := context.Background()
	nodeA, err := openNode(ctx, "node-a")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nodeA.Close(ctx)
	nodeB, err := openNode(ctx, "node-b")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nodeB.Close(ctx)

	account := newCallID()
	_ = nodeA.Commit(account, adapter.Change{Key: "balance", Value: []byte("42")})
	_ = nodeA.Flush(ctx)

	s, err := nodeB.Peek(ctx, account)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("balance=%s, owner %s, epoch %d\n", s.Map()["balance"], s.Owner, s.Epoch)

	_, err = nodeB.Peek(ctx, newCallID())
	fmt.Println(errors.Is(err, adapter.ErrNotFound))
	// Output:
	// balance=42, owner node-a, epoch 1
	// true
}

// Close on graceful shutdown: it writes what is pending, releases the
// node's sessions so peers adopt them at once, and refuses later commits.
func ExampleAdapter_Close() {
	ctx := context.Background()
	a, err := openNode(ctx, "node-a")
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 3 {
		_ = a.Commit(newCallID(), adapter.Change{Key: "state", Value: []byte("answered")})
	}

	// Give the drain a deadline: what it cannot write by then is listed in
	// the report, and those sessions stay owned until the lease expires.
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rep, err := a.Close(closeCtx)
	if err != nil {
		fmt.Println("close:", err)
	}
	fmt.Printf("released %d, unwritten %d\n", rep.Released, len(rep.Unwritten.Sessions))

	err = a.Commit(newCallID(), adapter.Change{Key: "state", Value: []byte("ringing")})
	fmt.Println(errors.Is(err, adapter.ErrClosed))
	// Output:
	// released 3, unwritten 0
	// true
}

// Validate reports every problem of a configuration at once, each naming
// its environment variable and the allowed range.
func ExampleConfig_Validate() {
	cfg := adapter.DefaultConfig()
	cfg.FlushDelay = 0
	cfg.MaxSessionItems = -1
	err := cfg.Validate()
	var ce *adapter.ConfigError
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			fmt.Println(p.Var)
		}
	}
	// Output:
	// HOLDOVER_FLUSH_DELAY
	// HOLDOVER_MAX_SESSION_ITEMS
}
