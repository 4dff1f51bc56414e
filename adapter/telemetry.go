package adapter

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/holdover/holdover/buffer"
)

const instrumentationName = "github.com/holdover/holdover/adapter"

// telemetry holds the adapter's OpenTelemetry instruments. Counters that the
// buffer and residency already keep are exported by one observable callback
// reading their Stats, so the commit path pays nothing for metrics.
type telemetry struct {
	meter  metric.Meter
	tracer trace.Tracer

	flushLatency metric.Float64Histogram
	flushItems   metric.Int64Histogram
	flushLag     metric.Float64Histogram
	adoptions    metric.Int64Counter
	adoptLatency metric.Float64Histogram

	reg metric.Registration

	statusOK, statusError metric.RecordOption // built once: no allocation per flush
	// family holds the family attribute of each family's flushes (the
	// sessions of no family carry none), built once at Open.
	family map[string]metric.RecordOption
}

// setFamilies builds the family attribute of every family's measurements.
func (t *telemetry) setFamilies(fams Families) {
	if len(fams) == 0 {
		return
	}
	t.family = make(map[string]metric.RecordOption, len(fams))
	for _, f := range fams {
		t.family[f.Name] = metric.WithAttributeSet(attribute.NewSet(attribute.String("family", f.Name)))
	}
}

func newTelemetry(mp metric.MeterProvider, tp trace.TracerProvider) *telemetry {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	t := &telemetry{meter: mp.Meter(instrumentationName), tracer: tp.Tracer(instrumentationName)}
	t.statusOK = metric.WithAttributeSet(attribute.NewSet(attribute.String("status", "ok")))
	t.statusError = metric.WithAttributeSet(attribute.NewSet(attribute.String("status", "error")))
	m := t.meter
	ms := metric.WithExplicitBucketBoundaries(0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
	t.flushLatency, _ = m.Float64Histogram("holdover.flush.duration", metric.WithUnit("ms"),
		metric.WithDescription("Time one flush (one session batch) took."), ms)
	t.flushItems, _ = m.Int64Histogram("holdover.flush.items", metric.WithUnit("{item}"),
		metric.WithDescription("Items written by one flush."),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
	t.flushLag, _ = m.Float64Histogram("holdover.flush.lag", metric.WithUnit("ms"),
		metric.WithDescription("Age of a flush's oldest change when it became durable: the data-loss window each flush closed."), ms)
	t.adoptions, _ = m.Int64Counter("holdover.adoptions", metric.WithUnit("{adoption}"),
		metric.WithDescription("Adopt calls by outcome (adopted, not_found, owned_elsewhere, already_owned, fenced, error)."))
	t.adoptLatency, _ = m.Float64Histogram("holdover.adoption.duration", metric.WithUnit("ms"),
		metric.WithDescription("Time Adopt took, by outcome; an adoption that waited for a dead owner's lease (AdoptOptions.Wait) counts from the wait's end."), ms)
	return t
}

func (t *telemetry) flushed(e buffer.FlushEvent) {
	ctx := context.Background()
	status := t.statusOK
	if e.Err != nil {
		status = t.statusError
	}
	t.flushLatency.Record(ctx, float64(e.Duration.Microseconds())/1000, status)
	if e.Err == nil {
		t.flushItems.Record(ctx, int64(e.Items))
		lag := float64(e.Lag.Microseconds()) / 1000
		if fam, ok := t.family[e.Family]; ok {
			t.flushLag.Record(ctx, lag, fam)
		} else {
			t.flushLag.Record(ctx, lag)
		}
	}
}

// register exports the buffer's and residency's state and counters.
func (t *telemetry) register(a *Adapter) error {
	m := t.meter
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		g, _ := m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		return g
	}
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, _ := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		return c
	}
	pendingSessions := gauge("holdover.buffer.pending_sessions", "{session}", "Sessions with unflushed changes.")
	pendingBytes := gauge("holdover.buffer.pending_bytes", "By", "Unflushed bytes, as counted against HOLDOVER_MAX_PENDING_BYTES.")
	oldest, _ := m.Float64ObservableGauge("holdover.buffer.oldest_pending_age", metric.WithUnit("ms"),
		metric.WithDescription("Age of the oldest unflushed change: the live data-loss window."))
	// The live window and the pending sessions of each family, with the
	// attribute family ("" for the sessions of none).
	famOldest, _ := m.Float64ObservableGauge("holdover.buffer.family.oldest_pending_age", metric.WithUnit("ms"),
		metric.WithDescription("Age of the oldest unflushed change of each family (attribute family): its live data-loss window."))
	famPending := gauge("holdover.buffer.family.pending_sessions", "{session}", "Sessions with unflushed changes, by family (attribute family).")
	famAttrs := map[string]metric.ObserveOption{}
	for _, f := range append(Families{{Name: ""}}, a.cfg.Families...) {
		famAttrs[f.Name] = metric.WithAttributeSet(attribute.NewSet(attribute.String("family", f.Name)))
	}
	inFlight := gauge("holdover.buffer.flushes_in_flight", "{flush}", "Flushes running now.")
	owned := gauge("holdover.sessions.owned", "{session}", "Sessions this node owns.")
	window := gauge("holdover.creation.window", "{session}", "Queue of ownership creations a new session is admitted behind without more ado (a slow start from a quarter of HOLDOVER_MAX_CONCURRENT_CREATES).")
	fenced := gauge("holdover.lease.fenced", "1", "1 while this node is self-fenced.")
	overloaded := gauge("holdover.buffer.overloaded", "1", "1 while commits are refused because unwritten changes would outlive HOLDOVER_MAX_WINDOW.")
	commits := counter("holdover.commits", "{commit}", "Commit calls applied.")
	changes := counter("holdover.changes", "{change}", "Changes in applied commits.")
	coalesced := counter("holdover.coalesced", "{change}", "Pending changes replaced before being flushed.")
	flushes := counter("holdover.flushes", "{flush}", "Successful flushes (one batch each).")
	flushedItems := counter("holdover.flushed_items", "{item}", "Items written by flushes.")
	retries := counter("holdover.flush.retries", "{flush}", "Flushes that failed transiently and were retried.")
	drops := counter("holdover.flush.drops", "{flush}", "Snapshots dropped after a permanent error.")
	droppedItems := counter("holdover.flush.dropped_items", "{item}", "Items in dropped snapshots.")
	refusals := counter("holdover.commit.refusals", "{commit}", "Commits refused with ErrBufferFull.")
	overloads := counter("holdover.commit.overloads", "{commit}", "Commits refused with ErrOverloaded (HOLDOVER_MAX_WINDOW).")
	late := counter("holdover.flush.late", "{flush}", "Writes that landed more than HOLDOVER_MAX_WINDOW (a family's own bound) after their oldest change: the window bound's prediction failed.")
	creationRefusals := counter("holdover.commit.creation_refusals", "{commit}", "Commits to new sessions refused with ErrOverloaded while ownership creations were backed up (HOLDOVER_MAX_CONCURRENT_CREATES).")
	splits := counter("holdover.flush.splits", "{snapshot}", "Snapshots split over HOLDOVER_MAX_BATCH_BYTES (atomic per part only).")
	groups := counter("holdover.flush.groups", "{request}", "Flush requests that carried several sessions (HOLDOVER_FLUSH_GROUP_MAX).")
	grouped := counter("holdover.flush.grouped", "{snapshot}", "Session snapshots written in those requests.")
	created := counter("holdover.sessions.created", "{session}", "Sessions recorded at epoch 1 by this node.")
	conflicts := counter("holdover.adoption.claim_conflicts", "{claim}", "Claims lost to a concurrent claimant.")
	negHits := counter("holdover.adoption.negative_cache_hits", "{lookup}", "Adoptions answered not-found by the negative cache.")
	renewals := counter("holdover.lease.renewals", "{renewal}", "Lease renewals that succeeded.")
	renewFails := counter("holdover.lease.renewal_failures", "{renewal}", "Lease renewals that failed.")
	fences := counter("holdover.lease.self_fences", "{fence}", "Times this node self-fenced because it could not renew its lease.")
	released := counter("holdover.sessions.released", "{session}", "Sessions released to peers on shutdown.")
	refreshed := counter("holdover.sessions.refreshed", "{session}", "Resident sessions whose TTLs were renewed before expiring.")
	lost := counter("holdover.sessions.lost", "{session}", "Owned sessions found adopted by another node (their pending changes discarded).")

	var err error
	t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		b := a.bufferStats()
		r := a.res.Stats()
		if len(b.Families) > 1 {
			for _, f := range b.Families {
				o.ObserveFloat64(famOldest, float64(f.OldestPendingAge.Microseconds())/1000, famAttrs[f.Name])
				o.ObserveInt64(famPending, int64(f.PendingSessions), famAttrs[f.Name])
			}
		}
		o.ObserveInt64(pendingSessions, int64(b.PendingSessions))
		o.ObserveInt64(pendingBytes, b.PendingBytes)
		o.ObserveFloat64(oldest, float64(b.OldestPendingAge.Microseconds())/1000)
		o.ObserveInt64(inFlight, int64(b.InFlight))
		o.ObserveInt64(owned, int64(r.Owned))
		o.ObserveInt64(window, r.CreationWindow)
		f := int64(0)
		if r.Fenced {
			f = 1
		}
		o.ObserveInt64(fenced, f)
		ov := int64(0)
		if b.Overloaded {
			ov = 1
		}
		o.ObserveInt64(overloaded, ov)
		o.ObserveInt64(overloads, int64(b.Overloads))
		o.ObserveInt64(late, int64(b.LateWrites))
		o.ObserveInt64(creationRefusals, int64(r.CreationRefusals))
		o.ObserveInt64(commits, int64(b.Commits))
		o.ObserveInt64(changes, int64(b.Changes))
		o.ObserveInt64(coalesced, int64(b.Coalesced))
		o.ObserveInt64(flushes, int64(b.Flushes))
		o.ObserveInt64(flushedItems, int64(b.FlushedItems))
		o.ObserveInt64(retries, int64(b.Retries))
		o.ObserveInt64(drops, int64(b.Drops))
		o.ObserveInt64(droppedItems, int64(b.DroppedItems))
		o.ObserveInt64(refusals, int64(b.Refusals))
		o.ObserveInt64(splits, int64(b.Splits))
		o.ObserveInt64(groups, int64(b.Groups))
		o.ObserveInt64(grouped, int64(b.Grouped))
		o.ObserveInt64(created, int64(r.Created))
		o.ObserveInt64(conflicts, int64(r.ClaimConflicts))
		o.ObserveInt64(negHits, int64(r.NegativeHits))
		o.ObserveInt64(renewals, int64(r.Renewals))
		o.ObserveInt64(renewFails, int64(r.RenewFailures))
		o.ObserveInt64(released, int64(r.Released))
		o.ObserveInt64(fences, int64(r.Fences))
		o.ObserveInt64(refreshed, int64(r.Refreshes))
		o.ObserveInt64(lost, int64(r.Lost))
		return nil
	}, pendingSessions, pendingBytes, oldest, inFlight, owned, window, fenced, commits, changes, coalesced, flushes,
		flushedItems, retries, drops, droppedItems, refusals, splits, groups, grouped, created, conflicts, negHits, renewals, renewFails, released,
		refreshed, lost, fences, overloaded, overloads, late, creationRefusals, famOldest, famPending)
	return err
}

func (t *telemetry) unregister() {
	if t.reg != nil {
		_ = t.reg.Unregister()
	}
}
