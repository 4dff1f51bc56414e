package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Failover holds the figures of a separate failover run (the load generator
// killing and overloading nodes), which the benchmark copies into Results:
// the same keys in both files. A nil field was not measured.
type Failover struct {
	// OverloadLostBeyondWindow counts acknowledged events lost although
	// acknowledged more than the window before their node failed (or lost by
	// a live node). Goal 0.
	OverloadLostBeyondWindow *int `json:"overload_lost_beyond_window"`
	// OverloadRefusals counts commits refused under overload (ErrOverloaded
	// or ErrBufferFull): the adapter's way of keeping the window bounded.
	OverloadRefusals *int `json:"overload_refusals"`
	// FalseFences counts self-fences of nodes that were alive and reachable.
	// Goal 0.
	FalseFences *int `json:"false_fences"`
	// FailoverP50MS, FailoverP99MS and FailoverMaxMS are the failover times
	// of a failed node's sessions, in milliseconds: from the failure to the
	// first answer a survivor gave for the session. Goal: p99 at most
	// LeaseTTLMS + 300.
	//
	// They come from a run at SteadyEventsPerS, about 80% of
	// SaturationEventsPerS: the events per second two nodes sustained in the
	// same run when offered more than they could take.
	FailoverP50MS *float64 `json:"failover_p50_ms"`
	FailoverP99MS *float64 `json:"failover_p99_ms"`
	FailoverMaxMS *float64 `json:"failover_max_ms"`
	// LeaseTTLMS is the lease TTL of that run, in milliseconds: the anchor of
	// the failover times.
	LeaseTTLMS *float64 `json:"lease_ttl_ms"`
	// FailoverFloorMS is how long after the failure the failed node's lease
	// ended as its peers judge it (its last renewal + the life it wrote, the
	// TTL less the clock skew, + the skew: the TTL), in milliseconds: no
	// session can fail over sooner, and what the failover times add to it
	// is the survivor's adoption.
	FailoverFloorMS *float64 `json:"failover_floor_ms"`
	// SaturationEventsPerS is the saturation load: the events per second two
	// reference nodes acknowledged when offered more than they could take.
	SaturationEventsPerS *float64 `json:"saturation_events_per_s"`
	// SteadyEventsPerS is the load the failover times were measured at.
	SteadyEventsPerS *float64 `json:"steady_events_per_s"`
}

// LoadFailover copies a failover run's figures from path into r.Failover:
// one JSON object with exactly Failover's ten keys, none null or negative,
// the lease TTL above zero and the failover times in order (p50, p99, max).
// When path is empty or does not exist (the failover run did not happen) the
// figures stay null and a note says so. Any other failure is an error naming
// path, and leaves r unchanged.
func (r *Results) LoadFailover(path string) error {
	if path == "" {
		r.Notes = append(r.Notes, "failover and overload figures: not measured (no -failover file)")
		return nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		r.Notes = append(r.Notes, fmt.Sprintf("failover and overload figures: not measured (%s does not exist)", path))
		return nil
	}
	if err != nil {
		return fmt.Errorf("failover figures: %w", err)
	}
	f, err := parseFailover(b)
	if err != nil {
		return fmt.Errorf("failover figures %s: %w", path, err)
	}
	r.Failover = f
	return nil
}

func parseFailover(b []byte) (Failover, error) {
	var f Failover
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Failover{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return Failover{}, errors.New("more than one JSON value")
	}
	ints := []struct {
		key string
		v   *int
	}{
		{"overload_lost_beyond_window", f.OverloadLostBeyondWindow},
		{"overload_refusals", f.OverloadRefusals},
		{"false_fences", f.FalseFences},
	}
	floats := []struct {
		key string
		v   *float64
	}{
		{"failover_p50_ms", f.FailoverP50MS},
		{"failover_p99_ms", f.FailoverP99MS},
		{"failover_max_ms", f.FailoverMaxMS},
		{"lease_ttl_ms", f.LeaseTTLMS},
		{"failover_floor_ms", f.FailoverFloorMS},
		{"saturation_events_per_s", f.SaturationEventsPerS},
		{"steady_events_per_s", f.SteadyEventsPerS},
	}
	var errs []error
	for _, k := range ints {
		switch {
		case k.v == nil:
			errs = append(errs, fmt.Errorf("%s missing or null", k.key))
		case *k.v < 0:
			errs = append(errs, fmt.Errorf("%s is %d, below 0", k.key, *k.v))
		}
	}
	for _, k := range floats {
		switch {
		case k.v == nil:
			errs = append(errs, fmt.Errorf("%s missing or null", k.key))
		case *k.v < 0:
			errs = append(errs, fmt.Errorf("%s is %g, below 0", k.key, *k.v))
		}
	}
	if f.LeaseTTLMS != nil && *f.LeaseTTLMS == 0 {
		errs = append(errs, errors.New("lease_ttl_ms is 0"))
	}
	if f.FailoverP50MS != nil && f.FailoverP99MS != nil && f.FailoverMaxMS != nil &&
		(*f.FailoverP50MS > *f.FailoverP99MS || *f.FailoverP99MS > *f.FailoverMaxMS) {
		errs = append(errs, fmt.Errorf("failover_p50_ms %g, failover_p99_ms %g and failover_max_ms %g are out of order",
			*f.FailoverP50MS, *f.FailoverP99MS, *f.FailoverMaxMS))
	}
	if len(errs) > 0 {
		return Failover{}, errors.Join(errs...)
	}
	return f, nil
}
