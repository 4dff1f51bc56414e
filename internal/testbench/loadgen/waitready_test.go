package loadgen

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A wait for a node ended by its caller says so: it does not claim the
// node was not ready after the whole timeout, which never passed.
func TestWaitReadyEndedByItsCallerSaysSo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	err := WaitReady(ctx, srv.URL, time.Minute, nil)
	if !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "after 1m0s") {
		t.Fatalf("WaitReady ended by its caller's context after 150ms: %v", err)
	}
	// The timeout's own message is unchanged.
	err = WaitReady(context.Background(), srv.URL, 150*time.Millisecond, nil)
	if err == nil || !strings.Contains(err.Error(), "not ready after 150ms: readyz answered 503") {
		t.Fatalf("WaitReady past its timeout: %v", err)
	}
}
