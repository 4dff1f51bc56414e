// Command sipnode is a SIP user agent server (on github.com/emiago/sipgo)
// whose dialogs and registrations survive the node: its in-memory table is
// persisted behind its back by holdover, and a peer adopts them when a proxy
// routes their next request there.
//
//	SIPNODE_LISTEN=127.0.0.32:5060 HOLDOVER_NODE_ID=sip-a go run ./examples/sipnode
//
// What it does with each request:
//
//   - initial INVITE: creates a dialog (Call-ID, local and remote tag,
//     remote CSeq, state, route set, remote target) in the table, whose
//     commit hook calls adapter.Commit, and answers 200 with an SDP answer.
//     By default it answers right after the commit, without waiting for the
//     flush: a crash less than one flush window (HOLDOVER_FLUSH_DELAY plus a
//     write) after the answer loses the dialog, and its BYE then gets 481.
//     SIPNODE_FLUSH_BEFORE_ANSWER=true sends 100 Trying, waits for
//     adapter.Flush, then answers 200: no answered dialog is ever lost. The
//     price: one Cassandra write on every call set-up (Flush writes at once,
//     it does not wait out the flush delay: 7.4 ms instead of 1.1 ms median
//     INVITE-to-200 in the sip_failover drill on loopback), one more write
//     per call (the ACK's change is no longer coalesced into the dialog's
//     first write), and, since Flush waits for every session's pending
//     changes, a set-up as slow as the slowest pending flush under load.
//   - ACK, BYE, re-INVITE, INFO, UPDATE: served from the table; for a Call-ID
//     not in memory the node calls adapter.Adopt, restores the dialog and
//     carries on, checking tags and CSeq against the restored dialog (481 on
//     other tags, 500 on a CSeq not above the last). BYE ends the session
//     (adapter.End).
//   - a dialog found nowhere: 481. One owned by a node whose lease is live:
//     the request is held, asking again every 100 ms, until that lease
//     expires (the owner is dead) and the node adopts, or until SIPNODE_HOLD
//     passes (the owner is alive): 503 with Retry-After.
//   - REGISTER: the bindings of an address of record are a session keyed by
//     it, so they survive their node (no re-registration after a failover).
//   - OPTIONS: 200, or 503 once the node drains, so the proxy's probes take it
//     out of rotation before it releases its sessions.
//
// SIGTERM drains: OPTIONS and new INVITEs get 503 for SIPNODE_DRAIN_GRACE
// while requests in dialogs it holds are still served, then the node stops
// serving SIP and closes the adapter, which flushes and releases every
// session so peers adopt them at once.
//
// Configuration: the adapter's HOLDOVER_* variables, and
//
//	SIPNODE_LISTEN               UDP address to serve SIP on (127.0.0.1:5060)
//	SIPNODE_CONTACT              host:port put in Contact (the listen address)
//	SIPNODE_STATS                address of the HTTP /stats endpoint (none)
//	SIPNODE_HOLD                 longest a request waits for a live owner's lease
//	                             (HOLDOVER_LEASE_TTL + 500ms)
//	SIPNODE_FLUSH_BEFORE_ANSWER  flush before answering an INVITE (false)
//	SIPNODE_DRAIN_GRACE          503 to probes before releasing, on SIGTERM (1500ms;
//	                             longer than the proxy's probe interval)
//
// The proxy in front must send every request of a dialog, ACK and BYE
// included, through its dispatcher after loose routing, and give in-dialog
// transactions a timer longer than SIPNODE_HOLD: see e2e/sip/kamailio.cfg.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/emiago/sipgo"

	"github.com/holdover/holdover/adapter"
)

// Config is sipnode's own configuration.
type Config struct {
	Listen            string
	Contact           string
	Stats             string
	Hold              time.Duration
	FlushBeforeAnswer bool
	DrainGrace        time.Duration
}

func (c Config) contactHostPort() (string, int) {
	hp := c.Contact
	if hp == "" {
		hp = c.Listen
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return hp, 5060
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

func configFromEnv(ac adapter.Config) (Config, error) {
	c := Config{
		Listen:     env("SIPNODE_LISTEN", "127.0.0.1:5060"),
		Contact:    os.Getenv("SIPNODE_CONTACT"),
		Stats:      os.Getenv("SIPNODE_STATS"),
		Hold:       ac.LeaseTTL + 500*time.Millisecond,
		DrainGrace: 1500 * time.Millisecond,
	}
	var err error
	if v := os.Getenv("SIPNODE_HOLD"); v != "" {
		if c.Hold, err = time.ParseDuration(v); err != nil || c.Hold < 0 || c.Hold > time.Minute {
			return c, fmt.Errorf("SIPNODE_HOLD: a duration from 0 to 1m, got %q", v)
		}
	}
	if v := os.Getenv("SIPNODE_DRAIN_GRACE"); v != "" {
		if c.DrainGrace, err = time.ParseDuration(v); err != nil || c.DrainGrace < 0 || c.DrainGrace > time.Minute {
			return c, fmt.Errorf("SIPNODE_DRAIN_GRACE: a duration from 0 to 1m, got %q", v)
		}
	}
	if v := os.Getenv("SIPNODE_FLUSH_BEFORE_ANSWER"); v != "" {
		if c.FlushBeforeAnswer, err = strconv.ParseBool(v); err != nil {
			return c, fmt.Errorf("SIPNODE_FLUSH_BEFORE_ANSWER: true or false, got %q", v)
		}
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return c, fmt.Errorf("SIPNODE_LISTEN: host:port, got %q", c.Listen)
	}
	return c, nil
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sipnode:", err)
		os.Exit(1)
	}
}

func run() error {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ac, err := adapter.ConfigFromEnv()
	if err != nil {
		return err
	}
	cfg, err := configFromEnv(ac)
	if err != nil {
		return err
	}
	sig, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stopSignals()
	serving, stopServing := context.WithCancel(context.Background())
	defer stopServing()

	n := NewNode(serving, cfg, log)
	n.a, err = adapter.Open(sig, ac, adapter.WithLogger(log), adapter.WithHooks(n.Hooks()))
	if err != nil {
		return err
	}

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("holdover-sipnode"))
	if err != nil {
		return err
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		return err
	}
	n.Register(srv)
	conn, err := net.ListenPacket("udp", cfg.Listen)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeUDP(conn) }()
	if cfg.Stats != "" {
		ln, err := net.Listen("tcp", cfg.Stats)
		if err != nil {
			return err
		}
		go func() { _ = http.Serve(ln, n.statsHandler()) }()
	}
	log.Info("sipnode ready", "node", n.a.NodeID(), "listen", cfg.Listen, "hold", cfg.Hold.String(),
		"flush_before_answer", cfg.FlushBeforeAnswer, "flush_delay", ac.FlushDelay.String(), "lease_ttl", ac.LeaseTTL.String())

	select {
	case <-sig.Done():
	case err := <-served:
		log.Error("SIP server stopped", "err", err)
	}
	stopSignals() // a second SIGTERM kills at once

	// Drain: out of the proxy's rotation first, then stop serving, then
	// release, so no request is answered for a session after its release.
	n.draining.Store(true)
	log.Info("sipnode draining", "grace", cfg.DrainGrace.String())
	time.Sleep(cfg.DrainGrace)
	stopServing()
	_ = ua.Close()
	_ = conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := n.a.Close(ctx)
	snap, _ := json.Marshal(n.snapshot())
	log.Info("sipnode stopped", "released", rep.Released, "unwritten_sessions", len(rep.Unwritten.Sessions),
		"stats", json.RawMessage(snap))
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
