package adapter

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// The window figures are exported per family: the live window (the oldest
// pending change) of a family still waiting, and the window each write of
// another family closed, both carrying the family attribute.
func TestFamilyMetricsCarryTheFamily(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	cfg := testConfig(t, "met-a", cassandratest.Keyspace(t))
	cfg.Families = Families{{Name: "slow", FlushDelay: 30 * time.Second}, {Name: "fast", FlushDelay: 10 * time.Millisecond}}
	a := openNode(t, cfg, WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	for _, s := range []string{"slow:1", "fast:1"} {
		if err := a.Commit(s, put("k", "v")); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.buf.Pending("fast:1") {
		if time.Now().After(deadline) {
			t.Fatal("the fast family's session was not written")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	family := func(set attribute.Set) string {
		v, _ := set.Value("family")
		return v.AsString()
	}
	var slowAge float64
	var fastLags uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Gauge[float64]:
				if m.Name == "holdover.buffer.family.oldest_pending_age" {
					for _, p := range d.DataPoints {
						if family(p.Attributes) == "slow" {
							slowAge = p.Value
						}
					}
				}
			case metricdata.Histogram[float64]:
				if m.Name == "holdover.flush.lag" {
					for _, p := range d.DataPoints {
						if family(p.Attributes) == "fast" {
							fastLags += p.Count
						}
					}
				}
			}
		}
	}
	if slowAge <= 0 {
		t.Errorf("no live window exported for the waiting family (oldest_pending_age{family=slow} = %v)", slowAge)
	}
	if fastLags == 0 {
		t.Error("no flush lag recorded with family=fast")
	}
}

// An adoption that waited for a dead owner's lease (AdoptOptions.Wait) says
// how long it waited, and holdover.adoption.duration records the adoption
// alone: a dashboard of adoption times must not show the lease TTL.
func TestAdoptionDurationLeavesOutTheWait(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	ks := cassandratest.Keyspace(t)
	a := openNode(t, testConfig(t, "wait-a", ks))
	b := openNode(t, testConfig(t, "wait-b", ks), WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	if err := a.Commit("w-1", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	a.crash()
	began := time.Now()
	s, err := b.Adopt(context.Background(), "w-1", AdoptOptions{Wait: 20 * time.Second})
	took := time.Since(began)
	if err != nil || string(s.Map()["k"]) != "v" {
		t.Fatalf("adopt with a wait: %+v %v", s, err)
	}
	// a's lease (3 s) was renewed at most a renewal period (1 s) before the crash.
	if s.Waited < time.Second || s.Waited > took {
		t.Fatalf("Waited %v of a call that took %v, want the lease's remaining 2-3 s", s.Waited, took)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var sum float64
	var count uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if d, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "holdover.adoption.duration" {
				for _, p := range d.DataPoints {
					if v, _ := p.Attributes.Value("outcome"); v.AsString() == "adopted" {
						sum, count = sum+p.Sum, count+p.Count
					}
				}
			}
		}
	}
	if count != 1 || sum <= 0 || sum > float64((took-s.Waited).Milliseconds())+1 {
		t.Fatalf("holdover.adoption.duration{outcome=adopted}: %d samples summing %.1f ms; want one of at most the %v the call took beyond its wait",
			count, sum, took-s.Waited)
	}
}
