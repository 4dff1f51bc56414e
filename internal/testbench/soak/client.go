package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/holdover/holdover/internal/testbench/wire"
)

// client speaks the reference node's HTTP API (docs/node-api.md).
type client struct {
	hc *http.Client
}

// answer is one reply of a node, or the error that stood for it.
type answer struct {
	Status int   // 0 when there was no answer
	Err    error // no answer: timeout, connection refused or cut
	Msg    string
	Owner  string // the owner a 409 names
	Result wire.Result
	View   wire.View
}

func (a answer) errText() string {
	switch {
	case a.Err != nil:
		return a.Err.Error()
	case a.Status != http.StatusOK:
		return fmt.Sprintf("HTTP %d: %s", a.Status, a.Msg)
	}
	return ""
}

func sessionURL(base, id string) string {
	return strings.TrimRight(base, "/") + "/v1/sessions/" + url.PathEscape(id)
}

func (c *client) do(ctx context.Context, method, u string, body any, out any) answer {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{Err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return answer{Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return answer{Err: fmt.Errorf("read reply: %w", err)}
	}
	a := answer{Status: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
			Owner string `json:"owner"`
		}
		if json.Unmarshal(data, &e) == nil {
			a.Msg, a.Owner = e.Error, e.Owner
		} else {
			a.Msg = strings.TrimSpace(string(data[:min(len(data), 200)]))
		}
		return a
	}
	if err := json.Unmarshal(data, out); err != nil {
		return answer{Err: fmt.Errorf("decode reply %q: %w", data[:min(len(data), 200)], err)}
	}
	return a
}

// event posts ev to session id on the node at base.
func (c *client) event(ctx context.Context, base, id string, ev Event) answer {
	var r wire.Result
	a := c.do(ctx, http.MethodPost, sessionURL(base, id)+"/events", ev, &r)
	a.Result = r
	return a
}

// get reads session id on the node at base; adopt as the API's query
// parameter; forceFrom, when not empty, forces the adoption away from that
// node ID (force=true&from=forceFrom).
func (c *client) get(ctx context.Context, base, id string, adopt bool, forceFrom string) answer {
	u := sessionURL(base, id)
	switch {
	case forceFrom != "":
		u += "?adopt=true&force=true&from=" + url.QueryEscape(forceFrom)
	case adopt:
		u += "?adopt=true"
	}
	var v wire.View
	a := c.do(ctx, http.MethodGet, u, nil, &v)
	a.View = v
	return a
}

// info reads GET /v1/info.
func (c *client) info(ctx context.Context, base string) (wire.Info, error) {
	var i wire.Info
	a := c.do(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/info", nil, &i)
	if a.Err != nil || a.Status != http.StatusOK {
		return i, fmt.Errorf("GET %s/v1/info: %s", base, a.errText())
	}
	return i, nil
}

// takeover asks the node at base to take over node from's sessions.
func (c *client) takeover(ctx context.Context, base, from string) (wire.TakeoverResult, answer) {
	var res wire.TakeoverResult
	a := c.do(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/v1/takeover/"+url.PathEscape(from), nil, &res)
	return res, a
}

// observed turns a session view into an observation.
func observed(v wire.View) *Observed {
	st := &State{Attrs: v.Attrs, History: v.History}
	if st.Attrs == nil {
		st.Attrs = map[string]string{}
	}
	return &Observed{Found: true, Version: v.Version, Digest: st.Digest(), State: st, Restored: v.Adopted}
}
