package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// End events for a dead node's sessions race a takeover of that node (a
// watcher's, or an operator's). A session whose end was answered 200 must
// stay ended: not resident, not persisted. The takeover restored a session
// whose state an event had taken without its help (joining its adoption, or
// reading it back before OnAdopted ran) and then ended: 7 to 15 of 60 ended
// sessions came back, and the next event persisted a state the session
// never had (I4, I2). Found by review.
func TestAnEndRacingATakeoverStaysEnded(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	a, cmd := startBinary(t, "end-takeover-a", ks, "HOLDOVER_LEASE_TTL=2s", "HOLDOVER_FLUSH_DELAY=20ms")
	cfg := testConfig(t, "end-takeover-b", ks)
	cfg.LeaseTTL = 2 * time.Second
	b := startNodeWith(t, cfg, Options{AdoptWait: 6 * time.Second})
	const n = 60
	for i := range n {
		a.must(fmt.Sprint("x", i), `{"type":"create","attrs":{"n":"x"}}`)
		a.must(fmt.Sprint("x", i), `{"type":"append","entry":"on a"}`)
	}
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ended := make([]bool, n)
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for ctx.Err() == nil {
			res, err := b.Takeover(ctx, "end-takeover-a", false)
			var owned *adapter.OwnedElsewhereError
			if errors.As(err, &owned) && owned.Live {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			t.Logf("takeover: %+v %v", res, err)
			return
		}
	}()
	for i := range n {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := b.event(fmt.Sprint("x", i), `{"type":"end"}`)
			ended[i] = r.Status == 200
			if r.Status != 200 && r.Status != 404 {
				t.Logf("end x%d: %d %s", i, r.Status, r.Raw)
			}
		}(i)
	}
	wg.Wait()
	flushNode(t, b)
	bad := 0
	for i := range n {
		id := fmt.Sprint("x", i)
		if !ended[i] {
			continue
		}
		if g := b.get("/v1/sessions/" + id); g.Status != 404 {
			bad++
			t.Errorf("%s: end answered 200, yet it is resident again: %d %s", id, g.Status, g.Raw)
			if bad == 1 {
				u := b.event(id, `{"type":"append","entry":"after end"}`)
				flushNode(t, b)
				p, err := b.Adapter().Peek(context.Background(), id)
				var m map[string][]byte
				if err == nil {
					m = p.Map()
				}
				t.Errorf("%s: an event after its end: %d %s; persisted now: %q (err %v)", id, u.Status, u.Raw, m, err)
			}
		}
	}
	t.Logf("%d of %d ended sessions came back", bad, n)
}
