package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/holdover/holdover/internal/testbench/wire"
)

// client speaks the reference node's HTTP contract.
type client struct {
	http *http.Client
}

// eventReply is the 200 body of POST /v1/sessions/{id}/events, as the
// reference node defines it.
type eventReply = wire.Result

// sessionReply is the 200 body of GET /v1/sessions/{id}.
type sessionReply = wire.View

// stateOf is the part of a session the model checks.
func stateOf(v sessionReply) sessionState { return sessionState{Attrs: v.Attrs, History: v.History} }

// infoReply is the body of GET /v1/info.
type infoReply = wire.Info

// familyInfo is a family in GET /v1/info.
type familyInfo = wire.FamilyInfo

// httpError is a non-200 answer.
type httpError struct {
	Status int
	Msg    string
	Owner  string // from a 409 body
}

func (e *httpError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.Status)
	if e.Owner != "" {
		s += " owner=" + e.Owner
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// errorKind classifies err for the error counters: "http_<status>",
// "timeout" or "transport".
func errorKind(err error) string {
	var he *httpError
	if errors.As(err, &he) {
		return fmt.Sprintf("http_%d", he.Status)
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "transport"
}

func (c *client) do(ctx context.Context, method, u string, body any, out any) error {
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
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		he := &httpError{Status: resp.StatusCode}
		var e struct {
			Error string `json:"error"`
			Owner string `json:"owner"`
		}
		if json.Unmarshal(data, &e) == nil {
			he.Msg, he.Owner = e.Error, e.Owner
		} else {
			he.Msg = strings.TrimSpace(string(data[:min(len(data), 200)]))
		}
		return he
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode reply: %w", method, u, err)
	}
	return nil
}

func sessionURL(base, id string) string {
	return strings.TrimRight(base, "/") + "/v1/sessions/" + url.PathEscape(id)
}

func (c *client) event(ctx context.Context, base, id string, ev event) (eventReply, error) {
	var r eventReply
	err := c.do(ctx, http.MethodPost, sessionURL(base, id)+"/events", ev, &r)
	return r, err
}

func (c *client) session(ctx context.Context, base, id string, adopt bool) (sessionReply, error) {
	u := sessionURL(base, id)
	if adopt {
		u += "?adopt=true"
	}
	var r sessionReply
	err := c.do(ctx, http.MethodGet, u, nil, &r)
	return r, err
}

func (c *client) info(ctx context.Context, base string) (infoReply, error) {
	var r infoReply
	err := c.do(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/info", nil, &r)
	return r, err
}

// WaitReady polls GET {url}/readyz until it answers 200, ctx ends or timeout
// passes. alive, when not nil, is consulted between polls: a non-nil error
// (the node's process exited, say) ends the wait with that error.
func WaitReady(ctx context.Context, url string, timeout time.Duration, alive func() error) error {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(url, "/")+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("readyz answered %d", resp.StatusCode)
		}
		last = err
		if alive != nil {
			if err := alive(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			if err := parent.Err(); err != nil {
				// The caller gave up, not the timeout.
				return fmt.Errorf("%s not ready: %w (last: %v)", url, err, last)
			}
			return fmt.Errorf("%s not ready after %v: %v", url, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
