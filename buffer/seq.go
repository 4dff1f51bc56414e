package buffer

import (
	"sync/atomic"
	"time"
)

// Seq scheme. A snapshot's Seq is a hybrid logical clock kept by the buffer:
//
//	Seq = max(units(now), last+2)
//
// where units counts SeqUnit ticks since SeqOriginUnix and last is the highest Seq the
// buffer has issued. Seq therefore follows wall time while the clock behaves, and stays
// strictly increasing per session (and across the whole buffer) when it does not:
// a retry takes a new, higher Seq with the session's latest values, so an older value
// can never overwrite a newer one.
//
// The store is expected to build each write's timestamp as ownerEpoch<<SeqBits | Seq
// (the partition delete of an Ended snapshot at Seq, the items at Seq+1), so Seq must
// stay below 1<<SeqBits: 2^44 ticks of 100µs is about 55 years, until around 2080.
// A snapshot whose Seq would reach it is dropped with ErrSeqExhausted.
const (
	// SeqBits is the width of Seq: every Seq (and Seq+1) is below 1<<SeqBits.
	SeqBits = 44
	// SeqUnit is the wall-time length of one Seq tick.
	SeqUnit = 100 * time.Microsecond
	// SeqOriginUnix is the origin of Seq ticks, 2025-01-01T00:00:00Z, in Unix seconds.
	SeqOriginUnix = 1735689600
)

var seqOrigin = time.Unix(SeqOriginUnix, 0)

// SeqTime returns the wall time a Seq corresponds to (a lower bound when the buffer's
// logical clock ran ahead of wall time). It is meant for inspection tools.
func SeqTime(seq uint64) time.Time {
	return seqOrigin.Add(time.Duration(seq) * SeqUnit)
}

// seqUnits converts a wall time to Seq ticks; times before the origin give 0.
func seqUnits(t time.Time) uint64 {
	d := t.Sub(seqOrigin)
	if d <= 0 {
		return 0
	}
	return uint64(d / SeqUnit)
}

// seqClock issues Seqs. It is safe for concurrent use.
type seqClock struct{ last atomic.Uint64 }

// next reserves a Seq (and Seq+1) for a snapshot taken at now.
func (c *seqClock) next(now time.Time) (uint64, error) {
	u := seqUnits(now)
	for {
		last := c.last.Load()
		seq := max(u, last+2)
		if seq+1 >= 1<<SeqBits {
			return 0, ErrSeqExhausted
		}
		if c.last.CompareAndSwap(last, seq) {
			return seq, nil
		}
	}
}
