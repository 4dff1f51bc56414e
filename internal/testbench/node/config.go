package node

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/holdover/holdover/adapter"
)

// Config is holdover-node's configuration: the adapter's HOLDOVER_*
// variables (see adapter.Config) and the node's own.
type Config struct {
	Adapter adapter.Config

	// Listen is the HTTP listen address. HOLDOVER_NODE_LISTEN, host:port;
	// default "127.0.0.1:8080". Port 0 picks a free port (logged at start).
	Listen string
	// DrainTimeout bounds each phase of a graceful shutdown: waiting for
	// requests in flight, then the adapter's final flush and release.
	// HOLDOVER_NODE_DRAIN_TIMEOUT, a duration; default 10s; range 0..10m.
	DrainTimeout time.Duration
	// LogFormat is "text" or "json". HOLDOVER_LOG_FORMAT; default "text".
	LogFormat string
	// LogLevel is the lowest level logged. HOLDOVER_LOG_LEVEL; default
	// "info"; one of debug, info, warn, error.
	LogLevel slog.Level
	// TakeoverOnExpiry makes the node take over all of a peer's sessions
	// the moment that peer's lease expires, once one of them was asked of
	// it while the peer was live (Options.TakeoverOnExpiry).
	// HOLDOVER_NODE_TAKEOVER_ON_EXPIRY, true or false; default false.
	TakeoverOnExpiry bool
	// AdoptWait is how long an adoption refused because a live peer owns the
	// session waits for that peer's lease to run out before the node answers
	// 409 (adapter.AdoptOptions.Wait): a request redirected from a node that
	// died is answered the moment the lease ends. HOLDOVER_NODE_ADOPT_WAIT, a
	// duration; default 0s (answer 409 at once); range 0..1m.
	AdoptWait time.Duration
}

// Defaults of the node's own variables.
const (
	DefaultListen       = "127.0.0.1:8080"
	DefaultDrainTimeout = 10 * time.Second
	maxDrainTimeout     = 10 * time.Minute
	maxAdoptWait        = time.Minute
)

// A nodeVar is one of the node's own variables. nodeVars is the one place
// its name, default and rule are written: configFrom sets every field from
// the default and then from the environment through set, and
// TestNodeConfigDocs checks the field comments and the table of
// docs/node-api.md against it.
type nodeVar struct {
	name  string // the variable
	field string // the Config field it sets
	def   string // the default, as the variable would hold it
	// set parses s into c, or returns what is wrong with it.
	set func(c *Config, s string) (problem string)
}

var nodeVars = []nodeVar{
	{"HOLDOVER_NODE_LISTEN", "Listen", DefaultListen, setListen},
	{"HOLDOVER_NODE_DRAIN_TIMEOUT", "DrainTimeout", DefaultDrainTimeout.String(), setDrainTimeout},
	{"HOLDOVER_LOG_FORMAT", "LogFormat", "text", setLogFormat},
	{"HOLDOVER_LOG_LEVEL", "LogLevel", "info", setLogLevel},
	{"HOLDOVER_NODE_TAKEOVER_ON_EXPIRY", "TakeoverOnExpiry", "false", setTakeoverOnExpiry},
	{"HOLDOVER_NODE_ADOPT_WAIT", "AdoptWait", "0s", setAdoptWait},
}

func setListen(c *Config, v string) string {
	c.Listen = v
	host, port, err := net.SplitHostPort(v)
	p, perr := strconv.Atoi(port)
	switch {
	case err != nil:
		return fmt.Sprintf("must be host:port (such as %s), got %q", DefaultListen, v)
	case perr != nil || p < 0 || p > 65535:
		return fmt.Sprintf("port must be a number between 0 and 65535, got %q", port)
	case strings.ContainsAny(host, " \t"):
		return fmt.Sprintf("host must not contain spaces, got %q", host)
	}
	return ""
}

func setDrainTimeout(c *Config, v string) string {
	return setDuration(&c.DrainTimeout, v, maxDrainTimeout, DefaultDrainTimeout.String())
}

func setAdoptWait(c *Config, v string) string {
	return setDuration(&c.AdoptWait, v, maxAdoptWait, "2.5s")
}

// setDuration parses v into d, a duration between 0 and max (example shows
// the form), or returns what is wrong with it.
func setDuration(d *time.Duration, v string, max time.Duration, example string) string {
	got, err := time.ParseDuration(v)
	switch {
	case err != nil:
		return fmt.Sprintf("must be a duration such as %s, got %q", example, v)
	case got < 0 || got > max:
		return fmt.Sprintf("must be between 0s and %s, got %s", strings.TrimSuffix(max.String(), "0s"), got)
	}
	*d = got
	return ""
}

func setLogFormat(c *Config, v string) string {
	c.LogFormat = v
	if v != "text" && v != "json" {
		return fmt.Sprintf("must be text or json, got %q", v)
	}
	return ""
}

func setLogLevel(c *Config, v string) string {
	if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil || !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(v)) {
		return fmt.Sprintf("must be debug, info, warn or error, got %q", v)
	}
	return ""
}

func setTakeoverOnExpiry(c *Config, v string) string {
	b, err := strconv.ParseBool(v)
	c.TakeoverOnExpiry = b
	if err != nil {
		return fmt.Sprintf("must be true or false, got %q", v)
	}
	return ""
}

// ConfigFromEnv reads the configuration from the environment. An empty
// variable counts as unset. On failure it returns an *adapter.ConfigError
// listing every problem, the adapter's and the node's together.
func ConfigFromEnv() (Config, error) {
	return configFrom(os.Getenv, adapter.ConfigFromEnv)
}

func configFrom(getenv func(string) string, adapterConfig func() (adapter.Config, error)) (Config, error) {
	var c Config
	var probs []adapter.FieldProblem
	add := func(v, format string, args ...any) {
		probs = append(probs, adapter.FieldProblem{Var: v, Problem: fmt.Sprintf(format, args...)})
	}

	var err error
	c.Adapter, err = adapterConfig()
	var cerr *adapter.ConfigError
	switch {
	case errors.As(err, &cerr):
		probs = append(probs, cerr.Problems...)
	case err != nil:
		return Config{}, err
	}
	// The node's own keys need room; checked even when other variables are
	// wrong, so that one run lists every problem.
	if !slices.ContainsFunc(probs, func(p adapter.FieldProblem) bool { return p.Var == "HOLDOVER_MAX_KEY_BYTES" }) {
		if k, err := strconv.Atoi(getenv("HOLDOVER_MAX_KEY_BYTES")); err == nil && k < minKeyBytes {
			add("HOLDOVER_MAX_KEY_BYTES", "holdover-node needs at least %d (its key %q), got %d", minKeyBytes, histKey(0), k)
		}
	}

	for _, nv := range nodeVars {
		if p := nv.set(&c, nv.def); p != "" {
			panic(fmt.Sprintf("node: the default of %s: %s", nv.name, p)) // TestNodeConfigDocs sees it first
		}
		if v := getenv(nv.name); v != "" {
			if p := nv.set(&c, v); p != "" {
				add(nv.name, "%s", p)
			}
		}
	}
	if len(probs) > 0 {
		slices.SortStableFunc(probs, func(a, b adapter.FieldProblem) int { return cmp.Compare(a.Var, b.Var) })
		return Config{}, &adapter.ConfigError{Problems: probs}
	}
	return c, nil
}

// Logger returns the logger the configuration asks for, writing to w.
func (c Config) Logger(w io.Writer) *slog.Logger {
	o := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}
