package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/holdover/holdover/internal/testbench/wire"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/buffer"
)

// Handler returns the node's HTTP API (docs/node-api.md).
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/sessions/{id}/events", n.handleEvent)
	mux.HandleFunc("GET /v1/sessions/{id}", n.handleGet)
	mux.HandleFunc("GET /v1/info", n.handleInfo)
	mux.HandleFunc("POST /v1/takeover/{node}", n.handleTakeover)
	mux.HandleFunc("PUT /v1/shared/{id}", n.handleSharedPut)
	mux.HandleFunc("GET /v1/shared/{id}", n.handleSharedGet)
	mux.HandleFunc("DELETE /v1/shared/{id}", n.handleSharedDelete)
	mux.HandleFunc("GET /v1/shared", n.handleSharedList)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", n.handleReady)
	if n.opts.Metrics != nil {
		mux.Handle("GET /metrics", n.opts.Metrics)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, prefix := range []string{"/v1/sessions/", "/v1/shared/"} {
			id, ok := strings.CutPrefix(r.URL.Path, prefix)
			if !ok {
				continue
			}
			id, _, _ = strings.Cut(id, "/")
			switch id {
			case "":
				// The mux would redirect an empty {id} segment to a
				// cleaned path; answer it as the bad input it is.
				n.writeError(w, n.checkSession(""))
				return
			case ".", "..":
				// Nor can it route "." or "..", which it would clean
				// away; refuse them rather than redirect.
				n.writeError(w, badInput("session ID %q cannot be used in a URL path", id))
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

func (n *Node) handleEvent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ev, err := n.decodeEvent(w, r)
	if err == nil {
		var res wire.Result
		res, err = n.Apply(r.Context(), id, ev)
		if err == nil {
			n.tel.event(r.Context(), ev.Type, http.StatusOK, res.Adopted)
			writeJSON(w, http.StatusOK, res)
			return
		}
	}
	status := n.writeError(w, err)
	n.tel.event(r.Context(), ev.Type, status, false)
	n.log.Debug("event refused", "session", id, "type", ev.Type, "status", status, "err", err)
}

// decodeEvent reads one JSON event from a body of at most MaxBody bytes,
// nested at most two levels deep, with no field an Event lacks.
func (n *Node) decodeEvent(w http.ResponseWriter, r *http.Request) (wire.Event, error) {
	var ev wire.Event
	if err := n.decodeBody(w, r, &ev, eventShape); err != nil {
		return wire.Event{}, err
	}
	return ev, nil
}

// bodyShape describes the JSON object a request carries, for decodeBody's
// errors.
type bodyShape struct {
	name    string // "event", "shared write"
	depth   int    // how deep it nests
	nesting string // how, in words
}

// The bodies of the API: an event, and attrs (an object) or keys (an array)
// inside it; a shared write, and set (an object) or delete (an array)
// inside it.
var (
	eventShape  = bodyShape{"event", 2, "an event object, with attrs or keys one level inside it"}
	sharedShape = bodyShape{"shared write", 2, "a shared write object, with set or delete one level inside it"}
)

// decodeBody reads one JSON object into v from a body of at most MaxBody
// bytes, nested at most shape.depth deep, with no field v lacks.
func (n *Node) decodeBody(w http.ResponseWriter, r *http.Request, v any, shape bodyShape) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, n.MaxBody()))
	if err != nil {
		return err
	}
	if err := checkDepth(body, shape); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badInput("malformed JSON body: %v", err)
	}
	if dec.More() {
		return badInput("malformed JSON body: data after the %s object", shape.name)
	}
	return nil
}

// checkDepth refuses JSON whose objects and arrays nest deeper than
// shape.depth, before it is decoded: encoding/json would otherwise accept up
// to 10000 levels of a field the body ignores. It scans the bytes once,
// skipping strings, and allocates nothing; what is not JSON is left to the
// decoder.
func checkDepth(body []byte, shape bodyShape) error {
	limit := shape.depth
	depth, inString, escaped := 0, false, false
	for _, c := range body {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > limit {
				return badInput("malformed JSON body: nested over the limit of %d levels (%s)", limit, shape.nesting)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// queryBool reads the boolean query parameter name (false when absent).
func queryBool(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, badInput("%s=%q is not a boolean", name, s)
	}
	return b, nil
}

func (n *Node) handleGet(w http.ResponseWriter, r *http.Request) {
	adopt, err := queryBool(r, "adopt")
	if err != nil {
		n.writeError(w, err)
		return
	}
	force, err := queryBool(r, "force")
	if err != nil {
		n.writeError(w, err)
		return
	}
	if force && !adopt {
		n.writeError(w, badInput("force=true needs adopt=true"))
		return
	}
	from := r.URL.Query().Get("from")
	if from != "" && !force {
		n.writeError(w, badInput("from=%q needs force=true", from))
		return
	}
	var v wire.View
	if force {
		v, err = n.ForceAdopt(r.Context(), r.PathValue("id"), from)
	} else {
		v, err = n.Get(r.Context(), r.PathValue("id"), adopt)
	}
	if err != nil {
		n.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (n *Node) handleInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.Info())
}

func (n *Node) handleReady(w http.ResponseWriter, _ *http.Request) {
	if err := n.Ready(); err != nil {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "node": n.cfg.NodeID})
}

// writeError answers with the status err calls for and returns it.
func (n *Node) writeError(w http.ResponseWriter, err error) int {
	status, body := n.classify(err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, body)
	return status
}

// classify maps an error to its HTTP status and body.
func (n *Node) classify(err error) (int, wire.ErrorBody) {
	body := wire.ErrorBody{Error: err.Error()}
	var (
		tooBig *http.MaxBytesError
		input  *InputError
		limit  *adapter.LimitError
		owned  *adapter.OwnedElsewhereError
		large  *buffer.SessionTooLargeError
	)
	switch {
	case errors.As(err, &tooBig):
		body.Error = fmt.Sprintf("request body over the limit of %d bytes (1 MiB plus HOLDOVER_MAX_VALUE_BYTES)", tooBig.Limit)
		body.Limit, body.Var = int(tooBig.Limit), "HOLDOVER_MAX_VALUE_BYTES"
		return http.StatusRequestEntityTooLarge, body
	case errors.As(err, &input):
		body.Limit, body.Var = input.Limit, input.Var
		return http.StatusBadRequest, body
	case errors.As(err, &limit):
		body.Limit = limit.Limit
		return http.StatusBadRequest, body
	case errors.As(err, &large) && large.Alone: // over its family's max= on its own: no retry can pass
		body.Limit, body.Var = int(large.Limit), "HOLDOVER_FAMILIES max="
		return http.StatusBadRequest, body
	case errors.Is(err, adapter.ErrInvalidInput):
		return http.StatusBadRequest, body
	case errors.Is(err, adapter.ErrNotFound), errors.Is(err, ErrNotResident):
		return http.StatusNotFound, body
	case errors.As(err, &owned):
		body.Owner = owned.Owner
		return http.StatusConflict, body
	case errors.Is(err, ErrResident):
		body.Owner = n.cfg.NodeID
		return http.StatusConflict, body
	}
	// ErrBufferFull, ErrOverloaded, ErrFenced, ErrClosed, ErrNotReady, Cassandra errors and
	// timeouts: the event was not applied and may be retried.
	return http.StatusServiceUnavailable, body
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
