package buffer

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"
)

// Benchmarks of the commit path. Flushing is effectively disabled (Delay 1h, caps out
// of reach), so they measure Commit alone. BenchmarkBaselineMapUpdate is the anchor:
// the same update done on a mutex-guarded map[string][]byte.
//
//	go test -run x -bench 'CommitUpdate|BaselineMapUpdate' -count 3 ./buffer/

const benchValueLen = 100

func benchBuffer(tb testing.TB) *Buffer {
	b := newBenchBuffer(tb)
	tb.Cleanup(func() { closeNow(b) })
	return b
}

func newBenchBuffer(tb testing.TB) *Buffer {
	return newBenchBufferConfig(tb, benchConfig())
}

// benchConfig effectively disables flushing.
func benchConfig() Config {
	return Config{
		Delay:           time.Hour,
		MaxPendingBytes: 1 << 40,
		MaxSessionItems: 1 << 20,
		MaxSessionBytes: 1 << 40,
	}
}

func newBenchBufferConfig(tb testing.TB, cfg Config) *Buffer {
	b, err := New(cfg, func(context.Context, *Snapshot) error { return nil })
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// collect runs the GC until the object behind p is gone (its goroutines may take a
// moment to exit after Close).
func collect(p weak.Pointer[Buffer]) {
	for p.Value() != nil {
		runtime.GC()
		runtime.Gosched()
	}
}

// closeNow closes b without draining it.
func closeNow(b *Buffer) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Pause()
	b.Close(ctx)
}

// benchKeys are the dirty keys the update benchmarks rotate over, in one session.
var benchKeys = func() []string {
	keys := make([]string, 16)
	for i := range keys {
		keys[i] = fmt.Sprintf("item-%06d", i)
	}
	return keys
}()

// BenchmarkCommitUpdate commits one change to an already dirty key with a value of
// the same size: the steady state of a hot session.
func BenchmarkCommitUpdate(b *testing.B) {
	buf := benchBuffer(b)
	val := make([]byte, benchValueLen)
	for _, k := range benchKeys {
		buf.Commit("session-000001", Change{Key: k, Value: val})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		val[0] = byte(i)
		if err := buf.Commit("session-000001", Change{Key: benchKeys[i&15], Value: val}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommitDirtyKeyFamilies commits one change to an already dirty key, with a
// value of the same size, of 48 sessions in turn: 16 each with IDs starting reg:,
// call: and pres:. With families=3 each prefix is a family (one with a hard
// MaxSessionBytes); with families=0 the same sessions are all in the default family.
// The difference is what families cost the commit path.
//
//	go test -run x -bench 'CommitDirtyKeyFamilies' -count 5 ./buffer/
func BenchmarkCommitDirtyKeyFamilies(b *testing.B) {
	var sessions []string
	for _, p := range []string{"reg:", "call:", "pres:"} {
		for i := range 16 {
			sessions = append(sessions, fmt.Sprintf("%s%06d", p, i))
		}
	}
	for _, n := range []int{0, 3} {
		b.Run(fmt.Sprint("families=", n), func(b *testing.B) {
			cfg := benchConfig()
			if n == 3 {
				cfg.Families = []Family{
					{Name: "reg", Prefix: "reg:", Delay: 50 * time.Minute},
					{Name: "call", Prefix: "call:", Delay: 40 * time.Minute, MaxSessionBytes: 1 << 30},
					{Name: "pres", Prefix: "pres:"},
				}
			}
			buf := newBenchBufferConfig(b, cfg)
			b.Cleanup(func() { closeNow(buf) })
			val := make([]byte, benchValueLen)
			for _, s := range sessions {
				for _, k := range benchKeys {
					buf.Commit(s, Change{Key: k, Value: val})
				}
			}
			if fs := buf.Stats().Families; len(fs) != 1+n || fs[len(fs)-1].PendingSessions != len(sessions)/max(n, 1) {
				b.Fatalf("families %+v", fs)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				val[0] = byte(i)
				if err := buf.Commit(sessions[i%len(sessions)], Change{Key: benchKeys[i/len(sessions)&15], Value: val}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBaselineMapUpdate is the anchor of BenchmarkCommitUpdate: the same key and
// value copied into the existing slice of a map[string][]byte under a sync.Mutex.
func BenchmarkBaselineMapUpdate(b *testing.B) {
	var mu sync.Mutex
	m := make(map[string][]byte)
	val := make([]byte, benchValueLen)
	for _, k := range benchKeys {
		m[k] = make([]byte, benchValueLen)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		val[0] = byte(i)
		k := benchKeys[i&15]
		mu.Lock()
		if dst := m[k]; len(dst) == len(val) {
			copy(dst, val)
		} else {
			m[k] = append(dst[:0], val...)
		}
		mu.Unlock()
	}
}

// BenchmarkCommitTx8 commits transactions of 8 changes to dirty keys of one session.
func BenchmarkCommitTx8(b *testing.B) {
	buf := benchBuffer(b)
	val := make([]byte, benchValueLen)
	var tx [2][8]Change
	for j := range 16 {
		tx[j/8][j%8] = Change{Key: benchKeys[j], Value: val}
	}
	buf.Commit("session-000001", tx[0][:]...)
	buf.Commit("session-000001", tx[1][:]...)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		val[0] = byte(i)
		if err := buf.Commit("session-000001", tx[i&1][:]...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommitNewKey commits changes to keys that are not dirty yet, 64 per
// session: the cost of a slot's first change.
func BenchmarkCommitNewKey(b *testing.B) {
	buf := benchBuffer(b)
	val := make([]byte, benchValueLen)
	keys := make([]string, b.N)
	sessions := make([]string, b.N/64+1)
	for i := range keys {
		keys[i] = fmt.Sprintf("item-%06d", i)
	}
	for i := range sessions {
		sessions[i] = fmt.Sprintf("session-%06d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := buf.Commit(sessions[i/64], Change{Key: keys[i], Value: val}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommitParallel is BenchmarkCommitUpdate from GOMAXPROCS goroutines, each
// with its own session.
func BenchmarkCommitParallel(b *testing.B) {
	buf := benchBuffer(b)
	var ids atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		session := fmt.Sprintf("session-%06d", ids.Add(1))
		val := make([]byte, benchValueLen)
		i := 0
		for pb.Next() {
			val[0] = byte(i)
			if err := buf.Commit(session, Change{Key: benchKeys[i&15], Value: val}); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkPendingKeyOverhead commits 65536 distinct keys (11-byte keys, 100-byte
// values) spread over sessions of the given size, and reports the heap growth per key
// beyond the key and value bytes (the buffer's own copies of them are subtracted).
// Go's maps grow by doubling, so the figure depends on how full the per-session maps
// happen to be: power-of-two session sizes are the unlucky case.
func BenchmarkPendingKeyOverhead(b *testing.B) {
	for _, per := range []int{10, 16, 100, 128, 1000, 1024} {
		b.Run(fmt.Sprintf("keys-per-session=%d", per), func(b *testing.B) {
			const n = 1 << 16
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("item-%06d", i%per)
			}
			sessions := make([]string, n/per+1)
			for i := range sessions {
				sessions[i] = fmt.Sprintf("session-%06d", i)
			}
			val := make([]byte, benchValueLen)
			var overhead float64
			var m0, m1 runtime.MemStats
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				buf := newBenchBuffer(b)
				runtime.GC()
				runtime.ReadMemStats(&m0)
				b.StartTimer()
				for j, k := range keys {
					buf.Commit(sessions[j/per], Change{Key: k, Value: val})
				}
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&m1)
				if got := buf.Stats().PendingItems; got != n {
					b.Fatalf("%d pending items", got)
				}
				growth := float64(m1.HeapAlloc) - float64(m0.HeapAlloc)
				overhead += growth/n - float64(len(keys[0])+benchValueLen)
				runtime.KeepAlive(keys)
				closeNow(buf)
				collect(weak.Make(buf)) // so that the next m0 does not count it
				b.StartTimer()
			}
			b.ReportMetric(overhead/float64(b.N), "overhead-B/key")
		})
	}
}
