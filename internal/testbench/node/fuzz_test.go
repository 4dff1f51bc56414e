package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/holdover/holdover/internal/testbench/wire"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/holdover/holdover/adapter"
)

// unopenedNode is a node whose adapter is never opened: its API parses and
// checks requests (no Cassandra needed) and answers a valid event 503.
func unopenedNode(t testing.TB) *Node {
	t.Helper()
	cfg := adapter.DefaultConfig()
	cfg.NodeID = "fuzz"
	cfg.MaxValueBytes = 64 // small limits, so that the fuzzer reaches them
	cfg.MaxKeyBytes = 32
	cfg.MaxSessionIDBytes = 16
	return New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// errorJSON decodes an error response, failing the test unless it is one.
func errorJSON(t testing.TB, rec *httptest.ResponseRecorder) wire.ErrorBody {
	t.Helper()
	var eb wire.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == "" {
		t.Fatalf("status %d with body %q: want a JSON error", rec.Code, rec.Body.String())
	}
	return eb
}

// FuzzEventBody sends arbitrary session IDs and bodies to the event API. A
// body that does not parse, nests too deep, has unknown fields, is over a
// limit or is not a valid event is a 400 or 413 whose error says why and,
// for a limit, names it; nothing panics, and nothing but a valid event
// reaches the adapter (which, not being open here, answers 503).
func FuzzEventBody(f *testing.F) {
	for _, s := range []struct{ id, body string }{
		{"s1", `{"type":"create"}`},
		{"s1", `{"type":"update","attrs":{"a":"1","b":"2"}}`},
		{"s1", `{"type":"append","entry":"e"}`},
		{"s1", `{"type":"unset","keys":["a","b"]}`},
		{"s1", `{"type":"end"}`},
		{"s1", `{"type":"update","attrs":{"a":"` + strings.Repeat("v", 65) + `"}}`},
		{"s1", `{"type":"update","attrs":{"` + strings.Repeat("k", 40) + `":"v"}}`},
		{"s1", `{"type":"unset","keys":[""]}`},
		{strings.Repeat("i", 17), `{"type":"create"}`},
		{"", `{"type":"create"}`},
		{"s1", `{"type":"create","extra":1}`},
		{"s1", `{"type":5}`},
		{"s1", `{"type":"update","attrs":{"a":{"b":"c"}}}`},
		{"s1", `{"type":"update","attrs":[[[[[[[[]]]]]]]]}`},
		{"s1", strings.Repeat("[", 100)},
		{"s1", `{"type":"create"} {"type":"end"}`},
		{"s1", `{"type":"create"`},
		{"s1", `null`},
		{"s1", ``},
		{"s1", `{"type":"append","entry":"\u00e9\ud800"}`},
		{"s1", `{"type":"update","attrs":{"a\"]}[{":"v"}}`},
		{"s/1", `{"type":"create"}`},
		{".", `{"type":"create"}`},
		{"..", `{"type":"end"}`},
		{"s1", `{"TYPE":"create"}`},
	} {
		f.Add(s.id, []byte(s.body))
	}
	n := unopenedNode(f)
	h := n.Handler()
	f.Fuzz(func(t *testing.T, id string, body []byte) {
		// What the node makes of the body and the ID, before the adapter.
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		ev, err := n.decodeEvent(httptest.NewRecorder(), req)
		if err == nil {
			err = n.checkEvent(id, ev)
		}
		if err != nil {
			status, eb := n.classify(err)
			if status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
				t.Fatalf("refused with status %d (%v); want 400 or 413", status, err)
			}
			if eb.Error == "" {
				t.Fatalf("status %d without an error message", status)
			}
			var ie *InputError
			if errors.As(err, &ie) && ie.Var != "" && (!strings.Contains(ie.Msg, ie.Var) || ie.Limit <= 0) {
				t.Fatalf("a limit's error %q does not name %s and its limit (%d)", ie.Msg, ie.Var, ie.Limit)
			}
		} else if !strings.Contains("create update append unset end", ev.Type) || ev.Type == "" {
			t.Fatalf("event of type %q accepted", ev.Type)
		}

		// The whole API: never a panic, never a 500.
		r, uerr := http.NewRequest(http.MethodPost, "http://node/v1/sessions/"+url.PathEscape(id)+"/events", bytes.NewReader(body))
		if uerr != nil {
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		switch c := rec.Code; {
		case c == http.StatusServiceUnavailable, c >= 400 && c < 500:
		default:
			t.Fatalf("POST %s with %q: status %d", r.URL.Path, body, c)
		}
		if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
			errorJSON(t, rec)
		}
	})
}

// endless is a body that never ends; it counts what was read of it.
type endless struct{ read int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	e.read += int64(len(p))
	return len(p), nil
}

// Huge, deeply nested and malformed bodies are refused with a 4xx that says
// what is wrong and, for a limit, names it; a body that never ends is read
// only up to the limit.
func TestEventBodyLimits(t *testing.T) {
	n := unopenedNode(t)
	h := n.Handler()
	post := func(body io.Reader) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/sessions/s1/events", body))
		return rec
	}

	huge := &endless{}
	rec := post(huge)
	eb := errorJSON(t, rec)
	if rec.Code != http.StatusRequestEntityTooLarge || eb.Limit != int(n.MaxBody()) || eb.Var != "HOLDOVER_MAX_VALUE_BYTES" ||
		!strings.Contains(eb.Error, "over the limit of 1048640 bytes") {
		t.Errorf("endless body: %d %+v; want 413 naming the limit 1048640 and HOLDOVER_MAX_VALUE_BYTES", rec.Code, eb)
	}
	if huge.read > n.MaxBody()+64<<10 {
		t.Errorf("read %d bytes of an endless body; the limit is %d", huge.read, n.MaxBody())
	}

	for _, tc := range []struct{ name, body, want string }{
		{"deeply nested", `{"type":"update","attrs":` + strings.Repeat(`{"a":`, 5000) + `"v"` + strings.Repeat("}", 5001),
			"nested over the limit of 2 levels"},
		{"nested array of an ignored field", `{"type":"create","x":[[1]]}`, "nested over the limit of 2 levels"},
		{"unknown field", `{"type":"create","attr":{"a":"1"}}`, `unknown field "attr"`},
		{"wrong type", `{"type":"update","attrs":{"a":1}}`, "Event.attrs"},
		{"not JSON", `type=create`, "malformed JSON body"},
		{"two objects", `{"type":"create"}{"type":"end"}`, "data after the event object"},
		{"value over the limit", `{"type":"update","attrs":{"a":"` + strings.Repeat("v", 65) + `"}}`,
			`value of attribute "a" is 65 bytes, over the limit of 64 bytes (HOLDOVER_MAX_VALUE_BYTES)`},
		{"unknown type", `{"type":"delete"}`, `unknown event type "delete"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := post(strings.NewReader(tc.body))
			eb := errorJSON(t, rec)
			// An event that parses is checked only once the adapter is open;
			// check it here as Apply would.
			if rec.Code == http.StatusServiceUnavailable {
				ev, err := n.decodeEvent(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body)))
				if err == nil {
					err = n.checkEvent("s1", ev)
				}
				if err == nil {
					t.Fatalf("%s accepted", tc.body)
				}
				var status int
				status, eb = n.classify(err)
				rec.Code = status
			}
			if rec.Code != http.StatusBadRequest || !strings.Contains(eb.Error, tc.want) {
				t.Errorf("%d %q; want 400 containing %q", rec.Code, eb.Error, tc.want)
			}
		})
	}
}

// FuzzNodeConfig parses arbitrary values of the node's own variables: a
// valid configuration, or a *adapter.ConfigError whose problems each name a
// HOLDOVER_ variable; never a panic.
func FuzzNodeConfig(f *testing.F) {
	vars := []string{"HOLDOVER_NODE_LISTEN", "HOLDOVER_NODE_DRAIN_TIMEOUT", "HOLDOVER_LOG_FORMAT", "HOLDOVER_LOG_LEVEL", "HOLDOVER_MAX_KEY_BYTES"}
	f.Add("127.0.0.1:8080", "10s", "json", "debug", "256")
	f.Add("localhost", "-1s", "xml", "trace", "4")
	f.Add("[::1]:99999", "11m", "", "WARN", "x")
	f.Add(":0", "1h", "text", "info", "8")
	f.Add("a b:1", "0", "JSON", "error+1", "-1")
	f.Fuzz(func(t *testing.T, listen, drain, format, level, keyBytes string) {
		env := map[string]string{}
		for i, v := range []string{listen, drain, format, level, keyBytes} {
			env[vars[i]] = v
		}
		c, err := configFrom(func(k string) string { return env[k] }, func() (adapter.Config, error) { return adapter.DefaultConfig(), nil })
		if err != nil {
			var ce *adapter.ConfigError
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error %v (%T) is not a *adapter.ConfigError with problems", err, err)
			}
			for _, p := range ce.Problems {
				if !strings.HasPrefix(p.Var, "HOLDOVER_") || p.Problem == "" {
					t.Fatalf("problem %q does not name a variable and say what is wrong", p)
				}
			}
			return
		}
		if c.DrainTimeout < 0 || c.DrainTimeout > maxDrainTimeout || (c.LogFormat != "text" && c.LogFormat != "json") {
			t.Fatalf("accepted %+v", c)
		}
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			t.Fatalf("accepted listen address %q: %v", c.Listen, err)
		}
		c.Logger(io.Discard).Info("fuzz")
	})
}
