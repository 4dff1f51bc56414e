package adapter

import (
	"github.com/holdover/holdover/buffer"
	"github.com/holdover/holdover/residency"
)

// Stats is a snapshot of the adapter's buffer and residency counters.
type Stats struct {
	Buffer    buffer.Stats
	Residency residency.Stats
}

// Stats returns the adapter's counters. Buffer.OldestPendingAge is the live
// data-loss window.
func (a *Adapter) Stats() Stats { return Stats{Buffer: a.buf.Stats(), Residency: a.res.Stats()} }
