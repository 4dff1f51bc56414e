package wire

import (
	"net/http"
	"time"
)

// Connection timeouts of the reference node's HTTP server and of its
// clients' connection pools. An HTTP/1.1 client that sends a POST on a
// pooled connection just as the server closes it gets EOF, and Go's
// Transport resends only idempotent requests: the event's outcome is then
// unknown. The server closes a connection that never carried a request
// ServerReadHeaderTimeout after accepting it (a client's Transport dials
// more connections than it ends up using when requests race for them), and
// one that did ServerIdleTimeout after its last answer. So the clients
// close their idle connections first.
const (
	// ServerReadHeaderTimeout bounds how long the node waits for a request's
	// headers, from when the connection is accepted or data arrives.
	ServerReadHeaderTimeout = 10 * time.Second
	// ServerIdleTimeout is how long the node keeps an idle connection open
	// between requests.
	ServerIdleTimeout = 2 * time.Minute
	// ClientIdleConnTimeout is how long a client keeps an unused pooled
	// connection: well below both of the above (timers fire late on a busy machine).
	ClientIdleConnTimeout = 4 * time.Second
)

// NewClient is the HTTP client of a program that drives reference nodes
// with up to sessions sessions at once: each request bounded by timeout,
// about a pooled connection per session, dropped once idle for
// ClientIdleConnTimeout.
func NewClient(timeout time.Duration, sessions int) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		MaxIdleConns:        sessions + 64,
		MaxIdleConnsPerHost: min(sessions, 1024) + 16,
		IdleConnTimeout:     ClientIdleConnTimeout,
	}}
}
