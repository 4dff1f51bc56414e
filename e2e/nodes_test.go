//go:build drills

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/holdover/holdover/internal/testbench/loadgen"
	"github.com/holdover/holdover/internal/testbench/wire"
)

// holdoverNode is one container of cmd/holdover-node.
type holdoverNode struct {
	*container
	short string // A, B, C, ... (the load generator's name for it)
	id    string // HOLDOVER_NODE_ID
	url   string // base URL on the front network
}

// nodeHost is holdover node i's host number on both networks.
func nodeHost(i int) int { return 100 + i }

// nodeSpec is what a drill asks of its holdover nodes.
type nodeSpec struct {
	Count       int
	Keyspace    string
	FlushDelay  time.Duration
	LeaseTTL    time.Duration
	Replication int    // replication factor of the keyspace (default 1)
	MaxPending  string // HOLDOVER_MAX_PENDING_BYTES (default 64MiB)
	Extra       []string
}

// names of the holdover nodes in a drill: A, B, C, ...
func nodeName(i int) string { return string(rune('A' + i)) }

// startNodes starts spec.Count holdover nodes on r. The first starts alone
// (it creates the keyspace; concurrent schema creation from several
// coordinators is unsafe in Cassandra 5.0), the rest together; each must
// answer /readyz within the start timeout.
func startNodes(ctx context.Context, r *ring, cfg config, drill string, spec nodeSpec) ([]*holdoverNode, error) {
	if spec.Replication == 0 {
		spec.Replication = 1
	}
	if spec.MaxPending == "" {
		spec.MaxPending = "64MiB"
	}
	nodes := make([]*holdoverNode, spec.Count)
	start := func(i int) error {
		name := nodeName(i)
		id := strings.ToLower(drill+"-"+name) + "-" + r.e.run
		env := append([]string{
			"HOLDOVER_NODE_ID=" + id,
			"HOLDOVER_NODE_LISTEN=0.0.0.0:8080",
			"HOLDOVER_CASSANDRA_HOSTS=" + strings.Join(r.hosts(), ","),
			"HOLDOVER_KEYSPACE=" + spec.Keyspace,
			"HOLDOVER_REPLICATION_FACTOR=" + strconv.Itoa(spec.Replication),
			"HOLDOVER_FLUSH_DELAY=" + spec.FlushDelay.String(),
			"HOLDOVER_LEASE_TTL=" + spec.LeaseTTL.String(),
			"HOLDOVER_MAX_PENDING_BYTES=" + spec.MaxPending,
			"HOLDOVER_NODE_DRAIN_TIMEOUT=15s",
			"HOLDOVER_LOG_LEVEL=info",
		}, spec.Extra...)
		c, err := r.e.runContainer(drill+"-"+name, cfg.nodeImage, env,
			attachment{r.data, nodeHost(i)}, attachment{r.front, nodeHost(i)})
		if err != nil {
			return err
		}
		n := &holdoverNode{container: c, short: name, id: id, url: "http://" + c.ip(r.front) + ":8080"}
		nodes[i] = n
		return loadgen.WaitReady(ctx, n.url, cfg.nodeStart, n.alive)
	}
	if err := start(0); err != nil {
		return nodes, fmt.Errorf("holdover node A did not become ready: %w", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, spec.Count)
	for i := 1; i < spec.Count; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = start(i) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nodes, fmt.Errorf("holdover node %s did not become ready: %w", nodeName(i), err)
		}
	}
	return nodes, nil
}

func (n *holdoverNode) loadNode() loadgen.Node { return loadgen.Node{Name: n.short, URL: n.url} }

var httpc = &http.Client{Timeout: 5 * time.Second}

// metrics scrapes the node's /metrics and returns each series' value summed
// over its labels, by metric name.
func (n *holdoverNode) metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/metrics answered %d", n.url, resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			if j := strings.LastIndex(rest, "}"); j >= 0 {
				rest = rest[j+1:]
			}
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out, sc.Err()
}

// Metric names as the node's Prometheus exporter writes them.
const (
	mPendingSessions = "holdover_buffer_pending_sessions"
	mPendingBytes    = "holdover_buffer_pending_bytes"
	mInFlight        = "holdover_buffer_flushes_in_flight"
	mFenced          = "holdover_lease_fenced"
	mFlushes         = "holdover_flushes_total"
	mFlushRetries    = "holdover_flush_retries_total"
	mFlushDrops      = "holdover_flush_drops_total"
	mDroppedItems    = "holdover_flush_dropped_items_total"
	mRefusals        = "holdover_commit_refusals_total"
	mClaimConflicts  = "holdover_adoption_claim_conflicts_total"
	mReleased        = "holdover_sessions_released_total"
	mSelfFences      = "holdover_lease_self_fences_total"
	mRenewFailures   = "holdover_lease_renewal_failures_total"
)

// metric returns one metric by name, tolerating the exporter's unit
// suffixes: an exact name first, else the only series that starts with it.
func metric(m map[string]float64, name string) float64 {
	if v, ok := m[name]; ok {
		return v
	}
	base := strings.TrimSuffix(name, "_total")
	for k, v := range m {
		if strings.HasPrefix(k, base) && (strings.HasSuffix(k, "_total") == strings.HasSuffix(name, "_total")) {
			return v
		}
	}
	return 0
}

// waitDrained waits until none of the nodes has anything pending or in
// flight, and returns how long that took.
func waitDrained(ctx context.Context, nodes []*holdoverNode, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	deadline := t0.Add(timeout)
	for {
		busy := ""
		for _, n := range nodes {
			m, err := n.metrics(ctx)
			if err != nil {
				busy = fmt.Sprintf("%s: %v", n.name, err)
				break
			}
			if p, f := metric(m, mPendingSessions), metric(m, mInFlight); p > 0 || f > 0 {
				busy = fmt.Sprintf("%s: %v sessions pending, %v flushes in flight", n.name, p, f)
				break
			}
		}
		if busy == "" {
			return time.Since(t0), nil
		}
		if time.Now().After(deadline) {
			return time.Since(t0), fmt.Errorf("buffers not drained after %v: %s", timeout, busy)
		}
		select {
		case <-ctx.Done():
			return time.Since(t0), ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// view is a session as a node holds it (GET /v1/sessions/{id}), as the
// reference node defines it.
type view = wire.View

// answer is one HTTP answer about a session: a view on 200, else the status
// and, for 409, the owner named.
type answer struct {
	Status int
	View   view
	Owner  string
	Err    error
}

// get asks the node for a session, adopting it if adopt is set.
func (n *holdoverNode) get(ctx context.Context, session string, adopt bool) answer {
	u := n.url + "/v1/sessions/" + url.PathEscape(session)
	if adopt {
		u += "?adopt=true"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return answer{Err: err}
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return answer{Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{Status: resp.StatusCode, Err: err}
	}
	a := answer{Status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		a.Err = json.Unmarshal(body, &a.View)
		return a
	}
	var e struct {
		Error string `json:"error"`
		Owner string `json:"owner"`
	}
	_ = json.Unmarshal(body, &e)
	a.Owner = e.Owner
	if resp.StatusCode != http.StatusNotFound {
		a.Err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, e.Error)
	}
	return a
}

// ready reports whether /readyz answers 200.
func (n *holdoverNode) ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// event is the body of POST /v1/sessions/{id}/events.
type event struct {
	Type  string            `json:"type"`
	Attrs map[string]string `json:"attrs,omitempty"`
	Entry string            `json:"entry,omitempty"`
}

// post sends one event to the node and returns the HTTP status.
func (n *holdoverNode) post(ctx context.Context, session string, ev event) (int, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url+"/v1/sessions/"+url.PathEscape(session)+"/events", bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
