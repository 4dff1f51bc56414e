// Command tuning shows how holdover is tuned through environment variables:
// the flush delay (the longest a committed change waits, so the most a crash
// can lose), the size triggers that flush earlier, and the limits that refuse
// input explicitly instead of growing without bound. It prints the effective
// configuration (the password redacted) and the adapter's counters.
//
// In production you set the variables in the shell, the unit file or the pod
// spec; every HOLDOVER_* variable is described on adapter.Config:
//
//	HOLDOVER_FLUSH_DELAY=500ms \
//	HOLDOVER_FLUSH_CONCURRENCY=8 \
//	HOLDOVER_MAX_SESSION_ITEMS=16 \
//	HOLDOVER_MAX_PENDING_BYTES=1MiB \
//	HOLDOVER_MAX_BATCH_BYTES=256KiB \
//	HOLDOVER_MAX_VALUE_BYTES=64KiB \
//	HOLDOVER_LEASE_TTL=2s \
//	go run ./examples/tuning
//
// For the demonstration the program sets those values itself with os.Setenv,
// but only for variables the shell left unset, so the line above (or any one
// variable of it) overrides them. Durations are Go durations ("250ms", "2s");
// sizes take binary units ("64KiB", "1MiB"). An invalid value stops the
// program with every problem listed, as ConfigFromEnv reports them.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/holdover/holdover/adapter"
)

// knobs are the variables this demonstration sets when the shell did not.
var knobs = []struct{ name, value, why string }{
	{"HOLDOVER_FLUSH_DELAY", "500ms", "longest wait before a change is written: the crash-loss window"},
	{"HOLDOVER_FLUSH_CONCURRENCY", "8", "session writes in flight at once"},
	{"HOLDOVER_MAX_SESSION_ITEMS", "16", "dirty items that flush a session before the delay"},
	{"HOLDOVER_MAX_PENDING_BYTES", "1MiB", "cap on unwritten bytes; commits beyond it get ErrBufferFull"},
	{"HOLDOVER_MAX_BATCH_BYTES", "256KiB", "largest Cassandra batch; bigger sessions are split"},
	{"HOLDOVER_MAX_VALUE_BYTES", "64KiB", "largest value Commit accepts"},
	{"HOLDOVER_LEASE_TTL", "2s", "how soon peers may adopt this node's sessions after it dies"},
	{"HOLDOVER_STATE_TTL", "1h", "state nobody adopts expires after this"},
	{"HOLDOVER_KEYSPACE", "holdover_examples", "where the tables live"},
	{"HOLDOVER_NODE_ID", "example-tuning", "this node's identity"},
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tuning:", err)
		os.Exit(1)
	}
}

func run() error {
	fromShell := map[string]bool{}
	for _, k := range knobs {
		if os.Getenv(k.name) != "" {
			fromShell[k.name] = true
			continue
		}
		os.Setenv(k.name, k.value)
	}
	cfg, err := adapter.ConfigFromEnv()
	if err != nil {
		return err // a *adapter.ConfigError: one line per bad variable
	}

	fmt.Println("effective configuration:")
	values := map[string]string{}
	for _, a := range cfg.LogValue().Group() {
		values[a.Key] = a.Value.String()
	}
	for _, k := range knobs {
		key := strings.ToLower(strings.TrimPrefix(k.name, "HOLDOVER_"))
		source := "set by this example"
		if fromShell[k.name] {
			source = "from the environment"
		}
		fmt.Printf("  %-28s %-18s %s (%s)\n", k.name, values[key], k.why, source)
	}
	// String (and LogValue, for slog) print every field, with a set
	// password as "***": safe to log at startup.
	fmt.Println("  all:", cfg)

	// The flush hook lets the demonstration see when a session is written.
	flushed := make(chan adapter.FlushEvent, 64)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	a, err := adapter.Open(ctx, cfg, adapter.WithLogger(logger), adapter.WithHooks(adapter.Hooks{
		OnFlushed: func(e adapter.FlushEvent) {
			select {
			case flushed <- e:
			default:
			}
		},
	}))
	if err != nil {
		return err
	}
	suffix := fmt.Sprintf("-%d", time.Now().UnixNano())

	// 1. Coalescing: a key changed 1000 times inside one flush delay costs
	// one buffer slot and one write.
	hot := "hot" + suffix
	for i := range 1000 {
		if err := a.Commit(hot, adapter.Change{Key: "position", Value: fmt.Appendf(nil, "%d", i)}); err != nil {
			return err
		}
	}
	st := a.Stats().Buffer
	fmt.Printf("1000 commits of one key: %d pending item, %d coalesced, oldest pending %s (< flush delay: %v)\n",
		st.PendingItems, st.Coalesced, st.OldestPendingAge.Round(time.Microsecond), st.OldestPendingAge < cfg.FlushDelay)
	e := waitFlush(flushed, hot)
	fmt.Printf("  written as %d item after %s, about HOLDOVER_FLUSH_DELAY=%s\n", e.Items, e.Lag.Round(10*time.Millisecond), cfg.FlushDelay)

	// 2. Size trigger: a session with HOLDOVER_MAX_SESSION_ITEMS dirty items
	// is written at once, without waiting for the delay.
	wide := "wide" + suffix
	for i := range cfg.MaxSessionItems {
		if err := a.Commit(wide, adapter.Change{Key: fmt.Sprintf("leg-%02d", i), Value: []byte("up")}); err != nil {
			return err
		}
	}
	e = waitFlush(flushed, wide)
	fmt.Printf("%d dirty items in one session: written at once (%d items, before the flush delay: %v)\n",
		cfg.MaxSessionItems, e.Items, e.Lag < cfg.FlushDelay)

	// 3. Limits are checked on Commit, which names the field and the limit.
	err = a.Commit("big"+suffix, adapter.Change{Key: "blob", Value: make([]byte, cfg.MaxValueBytes+1)})
	if !errors.Is(err, adapter.ErrInvalidInput) {
		return fmt.Errorf("oversized value accepted: %v", err)
	}
	fmt.Printf("value over HOLDOVER_MAX_VALUE_BYTES: %v\n", err)

	// 4. The pending-bytes cap: when writes cannot keep up, Commit refuses
	// with ErrBufferFull (counted in Stats) instead of growing memory. The
	// host sheds load or waits for a Flush, and tries again.
	bulk := "bulk" + suffix
	chunk := make([]byte, cfg.MaxValueBytes-1024)
	refusedAt := 0
	for i := range 1000 {
		err := a.Commit(bulk, adapter.Change{Key: fmt.Sprintf("chunk-%03d", i), Value: chunk})
		if errors.Is(err, adapter.ErrBufferFull) {
			refusedAt = i
			break
		}
		if err != nil {
			return err
		}
	}
	if refusedAt == 0 {
		return errors.New("the pending-bytes cap never refused a commit")
	}
	fmt.Printf("HOLDOVER_MAX_PENDING_BYTES=%s reached: ErrBufferFull after %d chunks of %s\n",
		cfg.MaxPendingBytes, refusedAt, adapter.ByteSize(len(chunk)))
	flushCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.Flush(flushCtx); err != nil {
		return err
	}
	if err := a.Commit(bulk, adapter.Change{Key: fmt.Sprintf("chunk-%03d", refusedAt), Value: chunk}); err != nil {
		return fmt.Errorf("commit after the flush: %w", err)
	}
	fmt.Println("  after Flush the same commit is accepted")

	if err := a.Flush(flushCtx); err != nil {
		return err
	}
	st = a.Stats().Buffer
	fmt.Println("stats:")
	fmt.Printf("  commits=%d changes=%d coalesced=%d refusals=%d\n", st.Commits, st.Changes, st.Coalesced, st.Refusals)
	fmt.Printf("  flushes=%d flushed_items=%d splits=%d retries=%d drops=%d\n", st.Flushes, st.FlushedItems, st.Splits, st.Retries, st.Drops)
	fmt.Printf("  pending_items=%d oldest_pending_age=%s (the live data-loss window)\n", st.PendingItems, st.OldestPendingAge)

	closeCtx, cancelClose := context.WithTimeout(ctx, 10*time.Second)
	defer cancelClose()
	rep, err := a.Close(closeCtx)
	if err != nil {
		return err
	}
	fmt.Printf("close: released %d sessions, %d left unwritten\n", rep.Released, len(rep.Unwritten.Sessions))
	return nil
}

// waitFlush returns the first successful flush of session.
func waitFlush(flushed <-chan adapter.FlushEvent, session string) adapter.FlushEvent {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case e := <-flushed:
			if e.Session == session && e.Err == nil {
				return e
			}
		case <-timeout:
			fmt.Fprintf(os.Stderr, "tuning: session %s was not flushed within 30s\n", session)
			os.Exit(1)
		}
	}
}
