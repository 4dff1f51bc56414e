package main

// This file plays the other nodes of the cluster, so that the example has
// sessions to adopt. A real deployment has no such code: the peers are other
// processes running the same host program.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/holdover/holdover/adapter"
)

const (
	roleVar          = "EXAMPLE_ADOPT_ROLE"
	roleCrashingPeer = "crashing-peer"
	sessionVar       = "EXAMPLE_ADOPT_SESSION"
	accountVar       = "EXAMPLE_ADOPT_ACCOUNT"
)

// openLivePeer opens a second node in this process that owns session and
// account (related state), both written to Cassandra.
func openLivePeer(ctx context.Context, cfg adapter.Config, logger *slog.Logger, session, account string) (*adapter.Adapter, error) {
	cfg.NodeID += "-live-peer"
	p, err := adapter.Open(ctx, cfg, adapter.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	err = errors.Join(
		p.Commit(session, adapter.Change{Key: "state", Value: []byte("ringing")}),
		p.Commit(account, adapter.Change{Key: "balance", Value: []byte("42")}),
		p.Flush(ctx),
	)
	if err != nil {
		_, _ = p.Close(ctx)
		return nil, err
	}
	return p, nil
}

// startCrashingPeer runs this program again as node, which writes session,
// commits one more change and is then killed with SIGKILL before the change
// is written: no flush, no release, its lease left to expire.
func startCrashingPeer(node, session, account string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), roleVar+"="+roleCrashingPeer, "HOLDOVER_NODE_ID="+node,
		sessionVar+"="+session, accountVar+"="+account)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // the child exits if this process dies first
	if err != nil {
		return err
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if line != "ready\n" {
		return fmt.Errorf("crashing peer %s did not get ready: %q %v", node, line, err)
	}
	return nil
}

// crashingPeer is the child process: a node that writes a session, commits a
// further change that its flush delay holds back, reports ready and waits to
// be killed.
func crashingPeer() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crashing peer:", err)
		os.Exit(1)
	}
	cfg, err := adapter.ConfigFromEnv()
	if err != nil {
		fail(err)
	}
	cfg.FlushDelay = time.Hour // nothing is written unless flushed: the last change is surely lost
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := adapter.Open(ctx, cfg, adapter.WithLogger(logger))
	if err != nil {
		fail(err)
	}
	session := os.Getenv(sessionVar)
	err = errors.Join(
		a.Commit(session,
			adapter.Change{Key: "state", Value: []byte("answered")},
			adapter.Change{Key: "caller", Value: []byte("alice")},
			adapter.Change{Key: "account", Value: []byte(os.Getenv(accountVar))}),
		a.Flush(ctx),
		a.Commit(session, adapter.Change{Key: "state", Value: []byte("on-hold")}),
	)
	if err != nil {
		fail(err)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin) // until killed, or until the parent is gone
	os.Exit(1)
}
