package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/holdover/holdover/internal/testbench/wire"
)

// Exit statuses of Run.
const (
	ExitOK     = 0
	ExitFailed = 1 // the node could not start, or stopped on an error
	ExitConfig = 2 // invalid configuration
)

// Run is holdover-node's main: it reads the configuration from the
// environment, serves the HTTP API and opens the adapter, and runs until
// SIGTERM or SIGINT (or ctx ends). Then it shuts down gracefully: /readyz
// turns 503, the HTTP server finishes the requests in flight, and the
// adapter flushes what is pending and releases its sessions so peers adopt
// them at once. Logs go to stderr. It returns the process exit status.
func Run(ctx context.Context, stderr io.Writer) int {
	cfg, err := ConfigFromEnv()
	if err != nil {
		fmt.Fprintf(stderr, "holdover-node: %v\n", err)
		return ExitConfig
	}
	log := cfg.Logger(stderr)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	metrics, err := NewMetrics()
	if err != nil {
		log.Error("metrics exporter", "err", err)
		return ExitFailed
	}
	defer func() { _ = metrics.Shutdown(context.Background()) }()

	n := New(cfg.Adapter, Options{Logger: log, MeterProvider: metrics.Provider, Metrics: metrics.Handler,
		TakeoverOnExpiry: cfg.TakeoverOnExpiry, AdoptWait: cfg.AdoptWait})
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Error("listen", "addr", cfg.Listen, "err", err)
		return ExitFailed
	}
	srv := &http.Server{
		Handler:           n.Handler(),
		ReadHeaderTimeout: wire.ServerReadHeaderTimeout,
		ReadTimeout:       time.Minute,
		IdleTimeout:       wire.ServerIdleTimeout,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("holdover-node listening", "addr", ln.Addr().String(), "node", cfg.Adapter.NodeID,
		"drain_timeout", cfg.DrainTimeout, "config", cfg.Adapter)

	// /healthz answers while the adapter connects; /readyz once it is open.
	if err := n.Open(ctx); err != nil {
		log.Error("adapter did not open", "err", err)
		shutdownHTTP(srv, 0)
		return ExitFailed
	}
	log.Info("holdover-node ready", "node", cfg.Adapter.NodeID)

	status := ExitOK
	select {
	case <-ctx.Done():
		log.Info("holdover-node shutting down", "cause", context.Cause(ctx))
	case err := <-served:
		log.Error("http server stopped", "err", err)
		status = ExitFailed
	}
	stop() // a second signal kills the process at once

	n.Drain()
	// Requests already on their way over kept-alive connections are served:
	// the server keeps its connections for a moment (/readyz says draining)
	// before it closes the idle ones, which would cut such a request off.
	time.Sleep(min(drainGrace, cfg.DrainTimeout/2))
	if err := shutdownHTTP(srv, cfg.DrainTimeout); err != nil {
		log.Warn("requests still in flight at the drain timeout were cut off", "err", err)
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	rep, err := n.Close(closeCtx)
	attrs := []any{"released", rep.Released, "unwritten_sessions", len(rep.Unwritten.Sessions), "unwritten_items", rep.Unwritten.Items}
	switch {
	case err != nil || len(rep.Unwritten.Sessions) > 0:
		for _, u := range rep.Unwritten.Sessions {
			log.Error("session not written at shutdown", "session", u.Session, "items", u.Items, "ended", u.Ended, "err", u.Err)
		}
		log.Error("adapter closed with state left unwritten", append(attrs, "err", err)...)
	default:
		log.Info("adapter closed", attrs...)
	}
	log.Info("holdover-node stopped")
	return status
}

// drainGrace is how long a draining node keeps serving its connections
// before it stops listening and closes the idle ones.
const drainGrace = 250 * time.Millisecond

// shutdownHTTP stops accepting connections and waits up to timeout for the
// requests in flight, then closes what remains.
func shutdownHTTP(srv *http.Server, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		_ = srv.Close()
	}
	return err
}
