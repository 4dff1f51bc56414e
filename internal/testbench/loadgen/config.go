package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/holdover/holdover/internal/testbench/wire"
)

// Node is one holdover node under load.
type Node struct {
	// Name identifies the node in flags, progress lines and Failure.Node
	// ("A", "B"). It need not be the node's own ID, which the generator reads
	// from GET /v1/info.
	Name string
	// URL is the node's base URL, such as "http://127.0.0.1:18081".
	URL string
}

// Failure schedules the failure of one node during Run.
type Failure struct {
	// Node is the Name of the node to fail.
	Node string
	// After is how long after Run starts the node fails. Required, > 0.
	After time.Duration
	// Fail performs the failure (SIGKILL, docker kill, docker pause, ...).
	// It is called once, at the failure moment: the generator stops sending
	// new events to the node just before calling it and takes the time then
	// as the failure time, for the durability window. When it returns, the
	// node is down: the failover clock (the failover times, LeaseWait,
	// AdoptTimeout) starts then, so a wait of its own before it fails the
	// node is not counted, and the node's sessions are redirected to the
	// survivors. An error ends Run with that error.
	Fail func(ctx context.Context, n Node) error
	// ContinueFor is how long load goes on at least after the redirect
	// completed, so the new owners are seen to carry on. Default 3s.
	ContinueFor time.Duration
	// WaitCreated, when positive, holds the failure past After until every
	// session of the node has had its creation acknowledged at least its
	// durability window before, for at most this long: a node that refuses new sessions while its creations are
	// backed up (a loaded machine, a Cassandra just started) would
	// otherwise fail with sessions that never existed, and a redirect finds
	// nothing of them. The progress says how long it waited and, if the
	// wait ran out, how many were never created. 0 fails at After.
	WaitCreated time.Duration
}

// FamilyShare is the share of the sessions in one family of the nodes.
type FamilyShare struct {
	// Name is the family's name: its sessions' IDs start with it and ':'.
	// 1..32 bytes of [A-Za-z0-9_.-], unique among Config.Families.
	Name string
	// Share is the share of Config.Sessions in the family, in (0, 1].
	Share float64
	// FlushDelay is the family's flush delay; with WindowAllowance it forms
	// the durability window its sessions are held to. Default: the delay
	// the node reports for the family in GET /v1/info (its flush delay when
	// it lists no such family); at least 0.
	FlushDelay time.Duration
}

// familyNameRE is the rule of the nodes for a family's name.
var familyNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// Config configures a Generator. The zero value of every optional field means
// its default.
type Config struct {
	// Nodes under load; sessions are assigned to them round robin. At least
	// one; names and URLs must be unique.
	Nodes []Node
	// Sessions is the number of concurrent sessions. Default 100, at most 1,000,000.
	Sessions int
	// Rate is the total rate of events, per second, over all sessions.
	// Default 200, at most 1,000,000. A session never has more than one
	// event in flight, so the rate reached is also bounded by
	// Sessions / event latency; shortfalls are counted as Saturated.
	Rate float64
	// Duration is how long events are sent. Default 10s, at most 24h.
	// With a Failure, Run lasts at least until Failure.ContinueFor after the
	// redirect completed.
	Duration time.Duration
	// AppendRatio is the share of appends among the events after create; the
	// rest are updates. Default 0.5; range 0..1.
	AppendRatio float64
	// MaxHistory, when positive, bounds a session's history: a session
	// holding that many entries gets updates in place of appends, so its
	// state stops growing (a long run's sessions then stay the size its
	// first seconds gave them, as a call's or a registration's does).
	// Default 0: histories grow for as long as the run lasts; range
	// 0..1000000.
	MaxHistory int
	// WindowAllowance is added to a failed node's flush delay (for a
	// session of a family, its family's, see FamilyShare.FlushDelay) to form
	// the durability window: the flush latency the product may need on top
	// of the delay. Default 250ms.
	WindowAllowance time.Duration
	// AdoptTimeout bounds how long, counted from the failure, a redirect
	// keeps retrying a session that answers 409 naming the failed node (its
	// lease has not expired yet) or a transient error. Default 20s; set it
	// above the nodes' lease TTL.
	AdoptTimeout time.Duration
	// AdoptRetryMax caps the backoff between the retries of an adopting GET
	// while the failed node's lease is live: sessions are served within about
	// that much of its expiry. Default 100ms; range 1ms..10s.
	AdoptRetryMax time.Duration
	// RedirectParallelism is the number of sessions adopted at once during a
	// redirect. Default 16.
	RedirectParallelism int
	// RequestTimeout bounds each HTTP request. Default 5s.
	RequestTimeout time.Duration
	// SessionPrefix starts every session ID. Default "lg-" and the start time
	// in hex, so runs against one keyspace do not collide.
	SessionPrefix string
	// Seed seeds the event mix. Default: the start time.
	Seed int64
	// Families puts shares of the sessions in families of the nodes
	// (HOLDOVER_FAMILIES, docs/families.md): the sessions of Families[k] are
	// named "<Name>:<SessionPrefix><i>" and held to their family's window;
	// the rest are named "<SessionPrefix><i>", in no family. Default none;
	// shares in (0, 1], together at most 1.
	Families []FamilyShare
	// Failure, when set, fails one node during Run and redirects its sessions.
	Failure *Failure
	// Progress receives about one line a second and the redirect's
	// milestones. Nil means silent.
	Progress io.Writer
	// Client sends the requests. Default: a client with RequestTimeout and
	// enough idle connections per node for Sessions.
	Client *http.Client
}

// Limits of Config, checked by Validate.
const (
	maxSessions = 1_000_000
	maxRate     = 1_000_000
	maxDuration = 24 * time.Hour
)

// withDefaults returns c with every unset optional field at its default.
func (c Config) withDefaults(now time.Time) Config {
	if c.Sessions == 0 {
		c.Sessions = 100
	}
	if c.Rate == 0 {
		c.Rate = 200
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.AppendRatio == 0 {
		c.AppendRatio = 0.5
	}
	if c.WindowAllowance == 0 {
		c.WindowAllowance = 250 * time.Millisecond
	}
	if c.AdoptTimeout == 0 {
		c.AdoptTimeout = 20 * time.Second
	}
	if c.RedirectParallelism == 0 {
		c.RedirectParallelism = 16
	}
	if c.AdoptRetryMax == 0 {
		c.AdoptRetryMax = 100 * time.Millisecond
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.SessionPrefix == "" {
		c.SessionPrefix = fmt.Sprintf("lg-%x-", now.UnixNano())
	}
	if c.Seed == 0 {
		c.Seed = now.UnixNano()
	}
	if c.Failure != nil && c.Failure.ContinueFor == 0 {
		f := *c.Failure
		f.ContinueFor = 3 * time.Second
		c.Failure = &f
	}
	if c.Client == nil {
		c.Client = wire.NewClient(c.RequestTimeout, c.Sessions)
	}
	return c
}

// Validate reports every invalid field of c (after defaults), naming the
// field and its bound.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Nodes) == 0 {
		bad("Nodes: at least one node is required")
	}
	names, urls := map[string]bool{}, map[string]bool{}
	for i, n := range c.Nodes {
		if n.Name == "" {
			bad("Nodes[%d].Name: empty", i)
		} else if names[n.Name] {
			bad("Nodes[%d].Name: %q appears twice", i, n.Name)
		}
		names[n.Name] = true
		u, err := url.Parse(n.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("Nodes[%d].URL: %q is not an http(s) URL", i, n.URL)
		} else if urls[n.URL] {
			bad("Nodes[%d].URL: %q appears twice", i, n.URL)
		}
		urls[n.URL] = true
	}
	if c.Sessions < 1 || c.Sessions > maxSessions {
		bad("Sessions: %d is outside 1..%d", c.Sessions, maxSessions)
	}
	if c.Rate <= 0 || c.Rate > maxRate {
		bad("Rate: %g is outside (0, %d] events/s", c.Rate, maxRate)
	}
	if c.Duration <= 0 || c.Duration > maxDuration {
		bad("Duration: %v is outside (0, %v]", c.Duration, maxDuration)
	}
	if c.AppendRatio < 0 || c.AppendRatio > 1 {
		bad("AppendRatio: %g is outside 0..1", c.AppendRatio)
	}
	if c.MaxHistory < 0 || c.MaxHistory > 1_000_000 {
		bad("MaxHistory: %d is outside 0..1000000", c.MaxHistory)
	}
	if c.WindowAllowance < 0 {
		bad("WindowAllowance: %v is negative", c.WindowAllowance)
	}
	if c.AdoptTimeout <= 0 || c.AdoptTimeout > time.Hour {
		bad("AdoptTimeout: %v is outside (0, 1h]", c.AdoptTimeout)
	}
	if c.AdoptRetryMax < time.Millisecond || c.AdoptRetryMax > 10*time.Second {
		bad("AdoptRetryMax: %v is outside [1ms, 10s]", c.AdoptRetryMax)
	}
	if c.RedirectParallelism < 1 || c.RedirectParallelism > 1024 {
		bad("RedirectParallelism: %d is outside 1..1024", c.RedirectParallelism)
	}
	if c.RequestTimeout <= 0 {
		bad("RequestTimeout: %v must be positive", c.RequestTimeout)
	}
	fams, sum := map[string]bool{}, 0.0
	for i, f := range c.Families {
		switch {
		case !familyNameRE.MatchString(f.Name):
			bad("Families[%d].Name: %q is not 1..32 bytes of [A-Za-z0-9_.-]", i, f.Name)
		case fams[f.Name]:
			bad("Families[%d].Name: %q appears twice", i, f.Name)
		}
		fams[f.Name] = true
		if !(f.Share > 0 && f.Share <= 1) {
			bad("Families[%d].Share: %g is outside (0, 1]", i, f.Share)
		} else {
			sum += f.Share
		}
		if f.FlushDelay < 0 {
			bad("Families[%d].FlushDelay: %v is negative", i, f.FlushDelay)
		}
	}
	if sum > 1+1e-9 {
		bad("Families: the shares add up to %.4g, over 1", sum)
	}
	if f := c.Failure; f != nil {
		if !names[f.Node] || f.Node == "" {
			bad("Failure.Node: %q is not one of Nodes", f.Node)
		}
		if len(c.Nodes) < 2 {
			bad("Failure: needs at least two Nodes (a survivor)")
		}
		if f.After <= 0 || f.After >= c.Duration {
			bad("Failure.After: %v is outside (0, Duration=%v)", f.After, c.Duration)
		}
		if f.Fail == nil {
			bad("Failure.Fail: nil")
		}
		if f.ContinueFor < 0 {
			bad("Failure.ContinueFor: %v is negative", f.ContinueFor)
		}
		if f.WaitCreated < 0 {
			bad("Failure.WaitCreated: %v is negative", f.WaitCreated)
		}
	}
	return errors.Join(errs...)
}
