package wire

import (
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
		if ClientIdleConnTimeout >= server/2 {
			t.Errorf("ClientIdleConnTimeout %v is not well below %s %v", ClientIdleConnTimeout, name, server)
		}
	}
}
