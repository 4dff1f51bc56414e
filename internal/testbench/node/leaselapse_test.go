package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/devtools/faulttest"
)

// An event checked the node's lease once, before adopting its session, and
// acknowledged its change however long the adoption took: a node whose
// lease lapsed meanwhile answered 200 for a change a peer adopting the
// session would never see (I1). Here the lease lapses after the adoption
// claimed the session and before the event commits.
func TestAnEventIsRefusedWhenTheLeaseLapsesDuringItsAdoption(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	hosts, port := cassandratest.Hosts(t)

	b := startNode(t, testConfig(t, "lapse-b", ks))
	b.must("lapse", `{"type":"create","attrs":{"k":"v"}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.Close(ctx); err != nil { // released: node a adopts it at once
		t.Fatal(err)
	}

	proxy := faulttest.NewCutProxy(t, hosts[0], port)
	cfg := testConfig(t, "lapse-a", ks)
	cfg.Hosts, cfg.Port = []string{"127.0.0.1"}, proxy.Port()
	cfg.LeaseTTL = time.Second
	cfg.Timeout = 200 * time.Millisecond
	tp := faulttest.NewAdoptionGate()
	a := New(cfg, Options{
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		AdapterOptions: []adapter.Option{adapter.WithTracerProvider(tp)},
	})
	if err := a.Open(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = a.Close(ctx)
	})

	answer := make(chan reply, 1)
	go func() {
		tn := &testNode{Node: a, t: t, url: srv.URL}
		answer <- tn.doQuiet("POST", "/v1/sessions/lapse/events", `{"type":"update","attrs":{"k":"w"}}`)
	}()
	select {
	case <-tp.Adopted:
	case r := <-answer:
		t.Fatalf("event answered before its adoption ended: %d %s", r.Status, r.Raw)
	case <-time.After(10 * time.Second):
		t.Fatal("the event's adoption did not end")
	}
	// The adoption claimed the session; now the node loses Cassandra and its
	// lease runs out before the event commits.
	proxy.Cut()
	deadline := time.Now().Add(10 * time.Second)
	for a.Adapter().LeaseValid() {
		if time.Now().After(deadline) {
			t.Fatal("lease still valid 10s after Cassandra was cut off")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(tp.Release)
	r := <-answer
	if r.Status == http.StatusOK {
		t.Fatalf("event acknowledged by a node whose lease lapsed before it committed: %s", r.Raw)
	}
	expect(t, "event after the lease lapsed", r, http.StatusServiceUnavailable, "fenced")
}

// doQuiet is do for another goroutine: it reports a failed request in the
// reply (status 0) instead of ending the test.
func (tn *testNode) doQuiet(method, path, body string) reply {
	req, err := http.NewRequest(method, tn.url+path, strings.NewReader(body))
	if err != nil {
		return reply{Raw: err.Error()}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{Raw: err.Error()}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	return r
}
