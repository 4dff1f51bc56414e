package store

import "fmt"

// SeqBits is how many low bits of a write timestamp hold the buffer's sequence;
// the ownership epoch occupies the bits above them.
const SeqBits = 44

// MaxEpoch is the largest epoch a timestamp can carry (the sign bit stays clear).
const MaxEpoch = 1<<(63-SeqBits) - 1

// Timestamp is the write timestamp of sequence seq at ownership epoch epoch.
// Timestamps of a higher epoch are always greater than any of a lower one, so a
// fenced owner's late writes can never outrank its successor's.
func Timestamp(epoch, seq uint64) (int64, error) {
	if epoch > MaxEpoch {
		return 0, permanent(fmt.Errorf("epoch %d over the limit %d", epoch, uint64(MaxEpoch)))
	}
	if seq >= 1<<SeqBits {
		return 0, permanent(fmt.Errorf("sequence %d over the limit %d", seq, uint64(1)<<SeqBits-1))
	}
	return int64(epoch<<SeqBits | seq), nil
}

// EpochBase is the timestamp at which the adopter of epoch writes its fencing
// partition tombstone; its restored items go at EpochBase+1 and every later
// write of that owner above them.
func EpochBase(epoch uint64) int64 { return int64(epoch << SeqBits) }
