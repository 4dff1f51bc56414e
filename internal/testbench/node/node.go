package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/holdover/holdover/adapter"
)

// Options adds what the configuration cannot say.
type Options struct {
	// Logger receives the node's and the adapter's logs (default
	// slog.Default()).
	Logger *slog.Logger
	// MeterProvider receives the node's and the adapter's metrics (default:
	// the global one).
	MeterProvider metric.MeterProvider
	// Metrics serves GET /metrics (default: 404).
	Metrics http.Handler
	// AdapterOptions are passed to adapter.Open after the node's own hooks,
	// logger and meter provider.
	AdapterOptions []adapter.Option
	// TakeoverOnExpiry: when an adoption is refused because a live peer owns
	// the session, watch that peer's lease and take over all its sessions
	// the moment it expires (HOLDOVER_NODE_TAKEOVER_ON_EXPIRY).
	TakeoverOnExpiry bool
	// AdoptWait: how long an adoption refused because a live peer owns the
	// session waits for the peer's lease to run out (adapter.AdoptOptions.Wait,
	// HOLDOVER_NODE_ADOPT_WAIT); 0 refuses at once.
	AdoptWait time.Duration
}

// Node is a session node: the session table, the adapter persisting it and
// the HTTP API serving it. It is safe for concurrent use.
type Node struct {
	cfg   adapter.Config
	opts  Options
	log   *slog.Logger
	table *Table
	tel   *telemetry

	a        atomic.Pointer[adapter.Adapter] // nil until Open
	fenced   atomic.Bool
	draining atomic.Bool
	closed   atomic.Bool
	evicting sync.WaitGroup // evictions started by the adapter's hooks

	watchMu  sync.Mutex
	watching map[string]bool // peers whose lease a watcher waits out (TakeoverOnExpiry)
	watchers sync.WaitGroup
	stop     chan struct{} // closed by Close: watchers end

	// takenOver holds the state of sessions a takeover adopted until they
	// are restored: an event that holds such a session's transaction (so the
	// restore waits for it) and finds it owned here takes it from here
	// instead of flushing the whole buffer to read it back.
	takenOver sync.Map // session -> []adapter.Item

	// While takeovers run (takeovers > 0), fetched records the sessions
	// events took the state of (fetch) since the oldest began: such an
	// event may have changed or ended the session since, and a takeover
	// must not restore what it adopted over that. A session the takeover
	// leaves alone is read back by its next event (ErrAlreadyOwned).
	fetchMu   sync.Mutex
	takeovers int
	fetched   map[string]bool
}

// New returns a node for cfg (a validated adapter configuration). Its HTTP
// handler serves at once; events are refused (503) until Open.
func New(cfg adapter.Config, opts Options) *Node {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	n := &Node{cfg: cfg, opts: opts, log: opts.Logger, watching: map[string]bool{}, stop: make(chan struct{})}
	n.table = NewTable(n.commit)
	n.tel = newTelemetry(opts.MeterProvider, n.table)
	return n
}

// Open opens the adapter: it connects to Cassandra, takes this node's lease
// and starts flushing. The node is ready once it returns nil.
func (n *Node) Open(ctx context.Context) error {
	opts := append([]adapter.Option{
		adapter.WithHooks(adapter.Hooks{
			OnFenced:       n.onFenced,
			OnRecovered:    n.onRecovered,
			OnDropped:      n.onDropped,
			OnSharedChange: n.onSharedChange,
		}),
		adapter.WithLogger(n.log),
	}, n.opts.AdapterOptions...)
	if n.opts.MeterProvider != nil {
		opts = append(opts, adapter.WithMeterProvider(n.opts.MeterProvider))
	}
	a, err := adapter.Open(ctx, n.cfg, opts...)
	if err != nil {
		return err
	}
	n.a.Store(a)
	return nil
}

// Drain marks the node as shutting down: /readyz answers 503 so load
// balancers stop sending events, while requests keep being served.
func (n *Node) Drain() { n.draining.Store(true) }

// Close drains the node and closes the adapter: pending changes are
// flushed until ctx ends and the sessions written are released, so peers
// adopt them at once. The report lists what could not be written.
func (n *Node) Close(ctx context.Context) (adapter.CloseReport, error) {
	n.Drain()
	a := n.a.Load()
	if a == nil || n.closed.Swap(true) {
		return adapter.CloseReport{}, nil
	}
	n.watchMu.Lock()
	close(n.stop)
	n.watchMu.Unlock()
	n.watchers.Wait()
	rep, err := a.Close(ctx)
	n.evicting.Wait()
	n.tel.close()
	return rep, err
}

// Ready returns nil when the node takes events: its adapter is open, not
// fenced and not draining.
func (n *Node) Ready() error {
	switch {
	case n.a.Load() == nil:
		return fmt.Errorf("%w: adapter not open", ErrNotReady)
	case n.closed.Load():
		return fmt.Errorf("%w: adapter closed", ErrNotReady)
	case n.draining.Load():
		return fmt.Errorf("%w: draining", ErrNotReady)
	case n.fenced.Load():
		return fmt.Errorf("%w: %w", ErrNotReady, adapter.ErrFenced)
	}
	return nil
}

// adapter returns the open adapter, or ErrNotReady.
func (n *Node) adapter() (*adapter.Adapter, error) {
	a := n.a.Load()
	switch {
	case a == nil:
		return nil, fmt.Errorf("%w: adapter not open yet", ErrNotReady)
	case n.closed.Load():
		return nil, fmt.Errorf("%w: node is shutting down", ErrNotReady)
	}
	return a, nil
}

// NodeID is the node's identity (HOLDOVER_NODE_ID).
func (n *Node) NodeID() string { return n.cfg.NodeID }

// Table is the node's session table.
func (n *Node) Table() *Table { return n.table }

// Adapter is the node's adapter, nil before Open.
func (n *Node) Adapter() *adapter.Adapter { return n.a.Load() }

// commit is the table's commit hook: it hands the transaction's changes to
// the adapter, which accepts all of them or none.
func (n *Node) commit(session string, changes []adapter.Change, ended bool) error {
	a, err := n.adapter()
	if err != nil {
		return err
	}
	if ended {
		return a.End(session)
	}
	return a.Commit(session, changes...)
}

func (n *Node) onFenced(sessions []string) {
	n.fenced.Store(true)
	n.log.Warn("node fenced: lease not renewed; dropping its sessions from memory", "sessions", len(sessions))
	n.evict(sessions, "fenced")
}

func (n *Node) onRecovered(lost []string) {
	n.fenced.Store(false)
	n.log.Warn("node recovered its lease", "sessions_adopted_by_peers", len(lost))
	// Evicted at the fence, but one may have been made resident since (a
	// takeover's restore that straddled the fence): peers own them now.
	n.evict(lost, "lost while fenced")
}

func (n *Node) onDropped(session string, items int, err error) {
	n.log.Error("changes dropped after a permanent error", "session", session, "items", items, "err", err)
	if errors.Is(err, adapter.ErrOwnedElsewhere) {
		// Another node owns this ID: nothing this node holds for it can
		// persist. Later events adopt it (or learn the owner).
		n.evict([]string{session}, "owned elsewhere")
	}
}

// evict drops sessions from the table off the hook's goroutine (it waits
// for transactions in progress on them).
func (n *Node) evict(sessions []string, why string) {
	n.evicting.Add(1)
	go func() {
		defer n.evicting.Done()
		k := n.table.Evict(sessions...)
		n.log.Info("sessions dropped from memory", "reason", why, "sessions", k)
	}()
}
