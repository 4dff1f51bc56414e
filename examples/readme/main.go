// Command readme is a session host that persists its in-memory sessions with
// holdover and takes over those of a node that died. It serves
// POST /event?session=ID&key=K&value=V (and &end=1 to end a session).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/holdover/holdover/adapter"
)

func main() {
	db := &memDB{sessions: map[string]map[string][]byte{}}
	// HOLDOVER_NODE_ID (default: the host name) must be unique among live
	// processes: a second process with the same ID waits for the first one's
	// lease, then fails with *adapter.NodeIDInUseError.
	openCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	a, err := adapter.OpenFromEnv(openCtx, adapter.WithHooks(adapter.Hooks{
		// The lease lapsed: peers may adopt these sessions. Drop the local
		// copies, never End them (End deletes the persisted state).
		OnFenced: func(sessions []string) { db.forget(sessions...) },
		// The lease is back: lost were adopted by peers meanwhile. The others
		// are still this node's (Adopt says ErrAlreadyOwned: reload them).
		OnRecovered: func(lost []string) { db.forget(lost...) },
		// Another node created the same session ID first (an
		// *adapter.OwnedElsewhereError), or Cassandra refused a value.
		OnDropped: func(session string, items int, err error) {
			slog.Error("changes dropped", "session", session, "items", items, "err", err)
			db.forget(session)
		},
	}))
	cancel()
	if err != nil {
		slog.Error("open", "err", err) // a *adapter.ConfigError lists every bad variable
		os.Exit(1)
	}
	http.HandleFunc("POST /event", func(w http.ResponseWriter, r *http.Request) {
		status, body := handle(r.Context(), a, db, r.FormValue("session"), r.FormValue("key"), r.FormValue("value"), r.FormValue("end") == "1")
		w.WriteHeader(status)
		fmt.Fprintln(w, body)
	})
	srv := &http.Server{Addr: os.Getenv("LISTEN")}
	go func() {
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			slog.Error("serve", "err", err)
			os.Exit(1)
		}
	}()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	<-stop
	_ = srv.Shutdown(context.Background())
	// Close with a deadline (Close waits for Cassandra as long as ctx lets
	// it), and log what it could not write.
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := a.Close(closeCtx)
	for _, u := range rep.Unwritten.Sessions {
		slog.Error("session not written", "session", u.Session, "items", u.Items, "err", u.Err)
	}
	slog.Info("closed", "released", rep.Released, "unwritten", len(rep.Unwritten.Sessions), "err", err)
}

// handle processes one event and returns the HTTP status and body.
func handle(ctx context.Context, a *adapter.Adapter, db *memDB, id, key, value string, end bool) (int, string) {
	if !db.has(id) { // not in memory: adopt it, or learn who has it
		// Fresh: "not found" creates it, so not the negative cache's answer,
		// which a peer's create since may have made stale.
		s, err := a.Adopt(ctx, id, adapter.AdoptOptions{Fresh: true})
		var owned *adapter.OwnedElsewhereError
		switch {
		case err == nil: // ours now: the previous owner is fenced
			db.restore(id, s.Items)
		case errors.Is(err, adapter.ErrNotFound):
			// New: create it here. If another node creates the same ID at
			// once, the first write wins and OnDropped tells the other.
		case errors.As(err, &owned): // a live node has it, or won the race
			return http.StatusMisdirectedRequest, owned.Owner
		case errors.Is(err, adapter.ErrAlreadyOwned): // ours, but not in memory
			if err := a.Flush(ctx); err != nil {
				return http.StatusServiceUnavailable, err.Error()
			}
			p, err := a.Peek(ctx, id)
			switch {
			case err == nil: // dropped at a fence, then kept: reload it
				db.restore(id, p.Items)
			case !errors.Is(err, adapter.ErrNotFound): // not found: ended, start afresh
				return http.StatusServiceUnavailable, err.Error()
			}
		default: // ErrFenced, a Cassandra timeout, ...: refuse, never drop silently
			return http.StatusServiceUnavailable, err.Error()
		}
	}
	if end {
		if err := db.end(id, a.End); err != nil {
			return http.StatusServiceUnavailable, err.Error()
		}
		return http.StatusOK, "ended"
	}
	// The commit hook hands the transaction to Commit (no I/O). A refusal
	// rolls it back: bad input (*adapter.LimitError) for good, a refusal
	// for load (ErrOverloaded, ErrBufferFull) until the client retries.
	items, err := db.update(id, adapter.Change{Key: key, Value: []byte(value)}, a.Commit)
	if errors.Is(err, adapter.ErrInvalidInput) {
		return http.StatusBadRequest, err.Error()
	}
	if err != nil {
		return http.StatusServiceUnavailable, err.Error()
	}
	// Per event, before acknowledging: after a pause past the lease, peers
	// may own the session and this change would never persist.
	if !a.LeaseValid() {
		return http.StatusServiceUnavailable, "lease lapsed"
	}
	return http.StatusOK, items
}

// memDB stands in for the host's in-memory database.
type memDB struct {
	mu       sync.Mutex
	sessions map[string]map[string][]byte
}

func (db *memDB) has(id string) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	_, ok := db.sessions[id]
	return ok
}

// restore loads a session adopted or peeked, unless it is already in memory:
// two events for a session not in memory may both adopt it (they share one
// adoption), and the first may have applied its change by the time the
// second restores.
func (db *memDB) restore(id string, items []adapter.Item) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if _, ok := db.sessions[id]; ok {
		return
	}
	m := map[string][]byte{}
	for _, it := range items {
		m[it.Key] = it.Value
	}
	db.sessions[id] = m
}

// update commits one change: first the commit hook, then memory.
func (db *memDB) update(id string, c adapter.Change, hook func(string, ...adapter.Change) error) (string, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := hook(id, c); err != nil {
		return "", err
	}
	if db.sessions[id] == nil {
		db.sessions[id] = map[string][]byte{}
	}
	db.sessions[id][c.Key] = c.Value
	var keys []string
	for k := range db.sessions[id] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := ""
	for _, k := range keys {
		out += fmt.Sprintf("%s=%s ", k, db.sessions[id][k])
	}
	return out, nil
}

// end ends a session for good: hook is adapter.End.
func (db *memDB) end(id string, hook func(string) error) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := hook(id); err != nil {
		return err
	}
	delete(db.sessions, id)
	return nil
}

// forget drops local copies only: the persisted state stays.
func (db *memDB) forget(ids ...string) {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, id := range ids {
		delete(db.sessions, id)
	}
}
