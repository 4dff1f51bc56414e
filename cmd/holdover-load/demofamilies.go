package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/testbench/loadgen"
	"github.com/holdover/holdover/internal/testbench/wire"
)

// The demo's families (docs/families.md): the nodes run with -families, the
// load puts -family-mix of its sessions in them, and the first shared family
// is shown converging: a setting written through A is read from B, before
// and after A's death.

// Defaults of -families and -family-mix.
const (
	defaultDemoFamilies  = "reg:delay=1s,ttl=1h;call:delay=50ms;settings:shared,refresh=500ms"
	defaultDemoFamilyMix = "reg=0.25,call=0.5"
)

// sharedSlack is what the demo allows a shared write beyond its family's
// flush delay and refresh interval before B must serve it.
const sharedSlack = 2 * time.Second

// demoFamilies is the parsed -families and -family-mix.
type demoFamilies struct {
	fams adapter.Families
	mix  []loadgen.FamilyShare
}

// parseDemoFamilies reads -families (HOLDOVER_FAMILIES's syntax, checked as
// the nodes will check it, with flushDelay the nodes' HOLDOVER_FLUSH_DELAY)
// and -family-mix ("name=share,..."), whose families must be owned families
// of -families.
func parseDemoFamilies(families, mix string, flushDelay time.Duration) (demoFamilies, error) {
	var d demoFamilies
	if err := d.fams.UnmarshalText([]byte(families)); err != nil {
		return d, fmt.Errorf("-families %q: %v", families, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	cfg := adapter.DefaultConfig()
	cfg.NodeID, cfg.FlushDelay, cfg.Families = "demo-a", flushDelay, d.fams
	var cerr *adapter.ConfigError
	if err := cfg.Validate(); errors.As(err, &cerr) {
		var probs []string
		for _, p := range cerr.Problems {
			if p.Var == "HOLDOVER_FAMILIES" {
				probs = append(probs, p.Problem)
			}
		}
		if len(probs) > 0 {
			return d, fmt.Errorf("-families %q: %s", families, strings.Join(probs, "; "))
		}
	}
	if strings.TrimSpace(mix) == "" {
		return d, nil
	}
	sum := 0.0
	for _, part := range strings.Split(mix, ",") {
		name, share, ok := strings.Cut(strings.TrimSpace(part), "=")
		s, err := strconv.ParseFloat(share, 64)
		i := slices.IndexFunc(d.fams, func(f adapter.Family) bool { return f.Name == name })
		switch {
		case !ok || name == "" || err != nil:
			return d, fmt.Errorf("-family-mix %q: %q is not name=share (such as %s)", mix, part, defaultDemoFamilyMix)
		case !(s > 0 && s <= 1):
			return d, fmt.Errorf("-family-mix %q: the share of %s, %g, is outside (0, 1]", mix, name, s)
		case i < 0:
			return d, fmt.Errorf("-family-mix %q: %s is not a family of -families", mix, name)
		case d.fams[i].Shared:
			return d, fmt.Errorf("-family-mix %q: %s is a shared family; the load drives owned sessions", mix, name)
		case slices.ContainsFunc(d.mix, func(f loadgen.FamilyShare) bool { return f.Name == name }):
			return d, fmt.Errorf("-family-mix %q: %s appears twice", mix, name)
		}
		sum += s
		// The load generator reads each family's delay from the nodes.
		d.mix = append(d.mix, loadgen.FamilyShare{Name: name, Share: s})
	}
	if sum > 1+1e-9 {
		return d, fmt.Errorf("-family-mix %q: the shares add up to %.4g, over 1", mix, sum)
	}
	return d, nil
}

// boundWindows gives each owned family with a delay of its own and no
// window= the window the load generator holds it to, its delay +
// allowance, so that the nodes refuse its sessions (ErrOverloaded) rather
// than let them outlive it; the other sessions keep HOLDOVER_MAX_WINDOW.
func (d demoFamilies) boundWindows(allowance time.Duration) {
	for i := range d.fams {
		if f := &d.fams[i]; !f.Shared && f.FlushDelay != 0 && f.MaxWindow == 0 {
			f.MaxWindow = f.FlushDelay + allowance
		}
	}
}

// shared returns the first shared family, or false.
func (d demoFamilies) shared() (adapter.Family, bool) {
	i := slices.IndexFunc(d.fams, func(f adapter.Family) bool { return f.Shared })
	if i < 0 {
		return adapter.Family{}, false
	}
	return d.fams[i], true
}

// sharedCheck is what the demo saw of its shared family.
type sharedCheck struct {
	Family  string
	Session string // the shared session written through A
	// Bound is how soon B had to serve the write: the family's flush delay
	// plus its refresh interval plus sharedSlack.
	Bound time.Duration
	// Seen is how long after the write B first served it; -1 when it did not
	// within Bound.
	Seen time.Duration
	// AfterKill reports whether B still served it after A's death.
	AfterKill bool
	// Err is what went wrong with the requests, if anything.
	Err error
}

// OK reports whether B served the write within the bound, and after A died.
func (c *sharedCheck) OK() bool {
	return c == nil || (c.Err == nil && c.Seen >= 0 && c.Seen <= c.Bound && c.AfterKill)
}

func (c *sharedCheck) verdict() string {
	switch {
	case c.OK():
		return ""
	case c.Err != nil:
		return fmt.Sprintf("shared family %s: %v", c.Family, c.Err)
	case c.Seen < 0:
		return fmt.Sprintf("shared family %s: B did not serve %s within %v of its write through A", c.Family, c.Session, c.Bound)
	}
	return fmt.Sprintf("shared family %s: B no longer served %s after A's death", c.Family, c.Session)
}

// sharedValues is the setting the demo writes.
func sharedValues(now time.Time) map[string]string {
	return map[string]string{"greeting": "hello from A", "written_at": now.UTC().Format(time.RFC3339Nano)}
}

// writeAndWatch writes a setting of family f through a and measures how long
// until b serves it, polling every 10 ms up to the bound.
func writeAndWatch(ctx context.Context, f adapter.Family, flushDelay time.Duration, a, b string) *sharedCheck {
	delay, refresh := flushDelay, adapter.DefaultSharedRefresh
	if f.FlushDelay > 0 {
		delay = f.FlushDelay
	}
	if f.Refresh > 0 {
		refresh = f.Refresh
	}
	c := &sharedCheck{Family: f.Name, Session: f.Prefix() + "demo", Bound: delay + refresh + sharedSlack, Seen: -1}
	t0 := time.Now()
	want := sharedValues(t0)
	if err := sharedDo(ctx, http.MethodPut, a+"/v1/shared/"+url.PathEscape(c.Session), wire.SharedWrite{Set: want}, nil); err != nil {
		c.Err = fmt.Errorf("PUT through A: %w", err)
		return c
	}
	for time.Since(t0) <= c.Bound && ctx.Err() == nil {
		var v wire.SharedView
		err := sharedDo(ctx, http.MethodGet, b+"/v1/shared/"+url.PathEscape(c.Session), nil, &v)
		if err == nil && equalValues(v.Values, want) {
			c.Seen = time.Since(t0)
			return c
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	return c
}

// checkAfterKill reads the setting from b once A is dead: b serves it, and
// lists its session in the family.
func (c *sharedCheck) checkAfterKill(ctx context.Context, b string) {
	var v wire.SharedView
	var l wire.SharedList
	err := sharedDo(ctx, http.MethodGet, b+"/v1/shared/"+url.PathEscape(c.Session), nil, &v)
	if err == nil {
		err = sharedDo(ctx, http.MethodGet, b+"/v1/shared?family="+url.QueryEscape(c.Family), nil, &l)
	}
	if err != nil {
		c.Err = fmt.Errorf("reading B after A's death: %w", err)
		return
	}
	c.AfterKill = v.Values["greeting"] == "hello from A" && slices.Contains(l.Sessions, c.Session)
}

func equalValues(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// sharedClient has a short timeout: a node that does not answer at once
// is polled again.
var sharedClient = &http.Client{Timeout: 2 * time.Second}

// sharedDo sends one request of the shared-family API and decodes a 200
// answer into out.
func sharedDo(ctx context.Context, method, u string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	resp, err := sharedClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, u, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// familyLines are the final report's lines of the families: one per family
// of the load, the sessions of none last, then the shared family's.
func familyLines(res demoResult) []string {
	var out []string
	fams := slices.Clone(res.Report.Families)
	if len(fams) > 0 {
		fams = append(fams[1:], fams[0]) // the sessions of no family last
	}
	for _, f := range fams {
		name := f.Name
		if name == "" {
			name = "(none)"
		}
		out = append(out, fmt.Sprintf("demo: family %s: delay %v, sessions %d, acknowledged %d, lost beyond window %d (window %v), lost within window %d, max lost age %v, adopted %d",
			name, f.FlushDelay, f.Sessions, f.Acknowledged, f.LostBeyondWindow, f.Window, f.LostWithinWindow, f.MaxLostAge.Round(time.Millisecond), f.Adopted))
	}
	if c := res.Shared; c != nil {
		seen := "not served"
		if c.Seen >= 0 {
			seen = fmt.Sprintf("served by B %d ms after its write through A (bound %v)", c.Seen.Milliseconds(), c.Bound)
		}
		after := "no longer served by B after A's death"
		if c.AfterKill {
			after = "still served by B after A's death"
		}
		out = append(out, fmt.Sprintf("demo: family %s (shared): %s %s, %s", c.Family, c.Session, seen, after))
	}
	return out
}
