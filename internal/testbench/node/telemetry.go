package node

import (
	"context"
	"github.com/holdover/holdover/internal/testbench/wire"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

const instrumentationName = "github.com/holdover/holdover/internal/testbench/node"

// telemetry holds the node's own instruments; the adapter exports its
// buffer, flush and adoption metrics through the same provider.
type telemetry struct {
	events metric.Int64Counter
	shared metric.Int64Counter
	reg    metric.Registration
}

func newTelemetry(mp metric.MeterProvider, t *Table) *telemetry {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(instrumentationName)
	tel := &telemetry{}
	tel.events, _ = m.Int64Counter("holdover.node.events", metric.WithUnit("{event}"),
		metric.WithDescription("Events received, by type, HTTP status and whether the event adopted its session."))
	tel.shared, _ = m.Int64Counter("holdover.node.shared_changes", metric.WithUnit("{change}"),
		metric.WithDescription("Changes of shared families made by other nodes (or expiries), seen at this node's re-reads, by family."))
	resident, _ := m.Int64ObservableGauge("holdover.node.sessions", metric.WithUnit("{session}"),
		metric.WithDescription("Sessions resident in the node's memory."))
	tel.reg, _ = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(resident, int64(t.Len()))
		return nil
	}, resident)
	return tel
}

func (t *telemetry) event(ctx context.Context, typ string, status int, adopted bool) {
	switch typ {
	case wire.EventCreate, wire.EventUpdate, wire.EventAppend, wire.EventUnset, wire.EventEnd:
	default:
		typ = "invalid" // keep the label's cardinality bounded
	}
	t.events.Add(ctx, 1, metric.WithAttributes(
		attribute.String("type", typ), attribute.Int("status", status), attribute.Bool("adopted", adopted)))
}

// sharedChanges counts changes of a shared family another node made. The
// family label's values are the configured shared families.
func (t *telemetry) sharedChanges(ctx context.Context, family string, changes int) {
	t.shared.Add(ctx, int64(changes), metric.WithAttributes(attribute.String("family", family)))
}

func (t *telemetry) close() {
	if t.reg != nil {
		_ = t.reg.Unregister()
	}
}

// Metrics is an OpenTelemetry meter provider exported in the Prometheus
// text format, with the Go runtime's and the process's collectors beside it.
type Metrics struct {
	Provider *sdkmetric.MeterProvider
	Handler  http.Handler
}

// NewMetrics returns a meter provider whose metrics Handler serves.
func NewMetrics() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, err
	}
	return &Metrics{
		Provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)),
		Handler:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
	}, nil
}

// Shutdown stops the meter provider.
func (m *Metrics) Shutdown(ctx context.Context) error { return m.Provider.Shutdown(ctx) }
