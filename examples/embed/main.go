// Command embed shows how a session host embeds holdover: the host keeps its
// live state in its own in-memory database (memdb.go), and that database's
// commit hook hands every committed transaction to adapter.Commit, which
// persists it to Cassandra behind the host's back.
//
//	go run ./examples/embed
//
// It reads the HOLDOVER_* variables like any node. Unless they are already
// set it uses HOLDOVER_KEYSPACE=holdover_examples,
// HOLDOVER_NODE_ID=example-embed, a short HOLDOVER_LEASE_TTL=2s and
// HOLDOVER_STATE_TTL=1h; Cassandra defaults to 127.0.0.1:9042
// (HOLDOVER_CASSANDRA_HOSTS, HOLDOVER_CASSANDRA_PORT).
//
// What to copy: the database's two hooks in main (OnCommit to Commit, OnEnd
// to End), the adapter's hooks that only forget local copies (OnFenced,
// OnRecovered, OnDropped: never End there, End deletes the persisted
// state), the Flush before answering something that must survive a crash,
// and Close on shutdown with a deadline. Its sessions all start here; a host
// that gets an event for a session not in its memory adopts it first
// (examples/adopt), and one that acknowledges events checks LeaseValid
// before it does (examples/readme).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"time"

	"github.com/holdover/holdover/adapter"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run() error {
	// Demo defaults; a variable set in the shell wins.
	setDefault("HOLDOVER_KEYSPACE", "holdover_examples")
	setDefault("HOLDOVER_NODE_ID", "example-embed")
	setDefault("HOLDOVER_LEASE_TTL", "2s")
	setDefault("HOLDOVER_STATE_TTL", "1h") // demo state expires by itself

	ctx := context.Background()
	cfg, err := adapter.ConfigFromEnv()
	if err != nil {
		return err // a *adapter.ConfigError listing every bad variable
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db := NewDB()
	a, err := adapter.Open(ctx, cfg, adapter.WithLogger(logger), adapter.WithHooks(adapter.Hooks{
		// The lease lapsed: peers may adopt these sessions. Forget the local
		// copies. Never End them: End deletes the persisted state that the
		// adopting peer needs.
		OnFenced: func(sessions []string) { db.Forget(sessions...) },
		// The lease is back: lost were adopted by peers meanwhile (the rest
		// are still this node's).
		OnRecovered: func(lost []string) { db.Forget(lost...) },
		// Permanent write errors arrive here, per session: a value Cassandra
		// refuses, or another node created the same session ID first (an
		// *adapter.OwnedElsewhereError). Forget the local copy; its next
		// event adopts it or learns its owner.
		OnDropped: func(session string, items int, err error) {
			logger.Error("state not persisted", "session", session, "items", items, "err", err)
			db.Forget(session)
		},
	}))
	if err != nil {
		return err
	}
	fmt.Printf("node %s, keyspace %s, flush delay %s\n", a.NodeID(), cfg.Keyspace, cfg.FlushDelay)

	// The glue: the database's commit hook hands each transaction to the
	// adapter. Commit does no I/O, so holding the database lock is fine, and
	// calling it under that lock keeps commit order per session. When the
	// adapter refuses a transaction (a value over HOLDOVER_MAX_VALUE_BYTES, a
	// full buffer) the hook fails and the database rolls it back, so memory
	// never holds state the adapter was not given. Ending a session (End)
	// ends it in Cassandra too; forgetting it (Forget) does not.
	db.OnCommit = func(session string, changes []Change) error {
		cs := make([]adapter.Change, len(changes))
		for i, c := range changes {
			cs[i] = adapter.Change{Key: c.Key, Value: c.Value, Delete: c.Delete}
		}
		return a.Commit(session, cs...)
	}
	db.OnEnd = a.End

	call := "call-" + randomHex()
	short := "call-" + randomHex()

	// Events of a call, each one transaction of the in-memory database.
	must(db.Update(call, func(tx *Tx) error {
		tx.Put("state", []byte("ringing"))
		tx.Put("caller", []byte("sip:alice@example.com"))
		tx.Put("callee", []byte("sip:bob@example.com"))
		return nil
	}))
	fmt.Printf("%s: INVITE -> state=ringing\n", call)
	must(db.Update(call, func(tx *Tx) error {
		tx.Put("state", []byte("answered"))
		tx.Put("media", []byte{0x0a, 0x00, 0x00, 0x01}) // values are bytes
		return nil
	}))
	fmt.Printf("%s: 200 OK -> state=answered\n", call)

	// A hot key: 100 transactions, but at most one write per flush delay.
	for i := 1; i <= 100; i++ {
		must(db.Update(call, func(tx *Tx) error {
			tx.Put("cseq", []byte(strconv.Itoa(i)))
			return nil
		}))
	}
	fmt.Printf("%s: 100 re-INVITEs, 100 transactions on key cseq\n", call)

	// A transaction the adapter refuses is rolled back in memory as well.
	err = db.Update(call, func(tx *Tx) error {
		tx.Put("state", []byte("recording"))
		tx.Put("recording", make([]byte, int(cfg.MaxValueBytes)+1))
		return nil
	})
	var limit *adapter.LimitError
	if !errors.As(err, &limit) {
		return fmt.Errorf("oversized value: got %v, want a *adapter.LimitError", err)
	}
	state, _ := getItem(db, call, "state")
	fmt.Printf("%s: oversized recording refused (%v); rolled back, state=%s\n", call, err, state)

	// A call that starts and ends: End drops it from memory and, through
	// OnEnd, deletes its persisted state too.
	must(db.Update(short, func(tx *Tx) error {
		tx.Put("state", []byte("ringing"))
		return nil
	}))
	must(db.End(short))
	fmt.Printf("%s: INVITE then CANCEL -> session ended\n", short)

	// Flush before anything that must not be lost (an answer to a billing
	// system, a handover): when it returns, every commit made before it is
	// durable. Without it, state is durable within the flush delay anyway.
	flushCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.Flush(flushCtx); err != nil {
		return err
	}
	fmt.Println("flush: everything committed so far is durable")

	// What another node would find, read without adopting.
	p, err := a.Peek(ctx, call)
	if err != nil {
		return err
	}
	persisted := p.Map()
	fmt.Printf("%s: cassandra holds %d items, owner %s, epoch %d, cseq=%s; equal to memory: %v\n",
		call, len(persisted), p.Owner, p.Epoch, persisted["cseq"], maps.EqualFunc(persisted, db.Snapshot(call), bytes.Equal))
	if _, err := a.Peek(ctx, short); errors.Is(err, adapter.ErrNotFound) {
		fmt.Printf("%s: not in cassandra (ended)\n", short)
	} else {
		return fmt.Errorf("peek of an ended session: %v, want ErrNotFound", err)
	}

	st := a.Stats().Buffer
	fmt.Printf("stats: commits=%d changes=%d coalesced=%d (replaced before being written) ends=%d\n",
		st.Commits, st.Changes, st.Coalesced, st.Ends)

	// Close on shutdown (SIGTERM): drain, release this node's sessions so
	// peers adopt them at once, drop the lease.
	closeCtx, cancelClose := context.WithTimeout(ctx, 10*time.Second)
	defer cancelClose()
	rep, err := a.Close(closeCtx)
	if err != nil {
		return err
	}
	fmt.Printf("close: released %d session(s) to peers, %d left unwritten\n", rep.Released, len(rep.Unwritten.Sessions))
	return nil
}

func getItem(db *DB, session, key string) (string, bool) {
	v, ok := db.Snapshot(session)[key]
	return string(v), ok
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

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}
