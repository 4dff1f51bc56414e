package wire

import (
	"net/http"
	"testing"
	"time"
)

// A client that keeps an idle connection longer than the node lets it sit
// may send an event on it just as the node closes it: EOF, an unknown
// outcome (the 10-minute overload run saw 18 at t=11 s, one second after
// the node closed the connections dialed at the start and never used).
func TestClientsDropIdleConnectionsBeforeTheNode(t *testing.T) {
	for name, server := range map[string]time.Duration{
		"ServerReadHeaderTimeout": ServerReadHeaderTimeout,
		"ServerIdleTimeout":       ServerIdleTimeout,
	} {
		idle := NewClient(time.Second, 400).Transport.(*http.Transport).IdleConnTimeout
		if idle <= 0 || idle >= server/2 {
			t.Errorf("NewClient keeps idle connections %v: not well below %s %v", idle, name, server)
		}
	}
}
