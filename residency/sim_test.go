package residency

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// TestRandomizedOwnership drives three nodes through thousands of random
// schedules of the ownership protocol over the in-memory store, with lost
// requests and lost replies, and checks after every step what the promises
// require of the persisted state:
//
//   - a write acknowledged by the session's owner (the ownership row names it
//     at its epoch) is visible at once (I1);
//   - once an adoption at epoch E returned, the visible state is what it
//     restored or a later write at an epoch of at least E: no write of an
//     older owner becomes visible, whenever it lands (I2);
//   - after an End was recorded, the state is empty until the session is
//     started afresh, and the fresh session's writes are visible (I4);
//   - an epoch a node holds never goes down, and is never above the row's (I3).
//
// Lease expiry is not simulated (the lease tests on Cassandra cover it); a
// fence is forced, and recovery runs as after a renewal.
func TestRandomizedOwnership(t *testing.T) {
	t.Parallel()
	schedules := 1000
	if testing.Short() {
		schedules = 50
	}
	var steps int
	for seed := range uint64(schedules) {
		steps += runSchedule(t, seed)
		if t.Failed() {
			return
		}
	}
	t.Logf("%d schedules, %d steps", schedules, steps)
}

// sim is one schedule's world.
type sim struct {
	t     *testing.T
	seed  uint64
	rng   *rand.Rand
	st    *memstore.Store
	nodes []*Manager
	seq   uint64
	step  int
	log   []string

	// per session
	writes   map[string]map[string]write // value -> the write that carried it
	adoptAt  map[string]uint64           // epoch of the last successful adoption or creation
	restored map[string]string           // value of "v" that adoption restored ("" none)
	ended    map[string]bool             // End recorded, not started afresh since
	held     map[[2]string]uint64        // (node, session) -> last epoch seen held
}

type write struct {
	node  string
	epoch uint64
	step  int
}

var simSessions = []string{"s0", "s1", "s2", "s3"}

func runSchedule(t *testing.T, seed uint64) int {
	s := &sim{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 99)), st: memstore.New(),
		writes: map[string]map[string]write{}, adoptAt: map[string]uint64{}, restored: map[string]string{},
		ended: map[string]bool{}, held: map[[2]string]uint64{},
	}
	var fmu sync.Mutex
	frng := rand.New(rand.NewPCG(seed, 7))
	s.st.Faults = func(op, _ string) memstore.Fault {
		switch op {
		case "renew_lease", "take_lease", "check_lease", "read_lease", "drop_lease":
			return memstore.OK // leases stay healthy: fences are forced
		}
		fmu.Lock()
		defer fmu.Unlock()
		switch r := frng.Float64(); {
		case r < 0.06:
			return memstore.Fail
		case r < 0.12:
			return memstore.LoseReply
		}
		return memstore.OK
	}
	ctx := context.Background()
	for i := range 3 {
		m, err := New(Config{NodeID: fmt.Sprintf("n%d", i), LeaseTTL: 10 * time.Minute, RefreshEvery: time.Hour,
			Logger: slog.New(slog.DiscardHandler)}, s.st)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		s.nodes = append(s.nodes, m)
	}
	defer func() {
		for _, m := range s.nodes {
			_ = m.Close(ctx, false)
		}
	}()
	const steps = 120
	for s.step = 0; s.step < steps && !t.Failed(); s.step++ {
		s.once(ctx)
		s.check()
	}
	return steps
}

func (s *sim) logf(format string, args ...any) {
	s.log = append(s.log, fmt.Sprintf("%3d ", s.step)+fmt.Sprintf(format, args...))
}

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	tail := s.log
	if len(tail) > 60 {
		tail = tail[len(tail)-60:]
	}
	msg := fmt.Sprintf(format, args...)
	s.t.Errorf("seed %d step %d: %s\nlast steps:\n%s", s.seed, s.step, msg, joinLines(tail))
}

func joinLines(ls []string) string {
	out := ""
	for _, l := range ls {
		out += "  " + l + "\n"
	}
	return out
}

// once runs one random operation.
func (s *sim) once(ctx context.Context) {
	m := s.nodes[s.rng.IntN(len(s.nodes))]
	id := simSessions[s.rng.IntN(len(simSessions))]
	switch r := s.rng.IntN(100); {
	case r < 45:
		s.write(ctx, m, id)
	case r < 55:
		s.end(ctx, m, id)
	case r < 80:
		s.adopt(ctx, m, id, s.rng.IntN(3) == 0)
	case r < 92:
		m.fence()
		m.recover()
		s.logf("%s fence+recover: fenced=%v", m.NodeID(), m.Fenced())
	default:
		n, err := m.ReleaseAll(ctx)
		s.logf("%s release all: %d %v", m.NodeID(), n, err)
	}
}

// write commits a new value of key "v" the way the adapter's flush does:
// recording a brand-new session first, then writing at the owned epoch.
func (s *sim) write(ctx context.Context, m *Manager, id string) {
	if !m.LeaseValid() {
		return
	}
	e, ok := m.Epoch(id)
	if !ok {
		if s.rng.IntN(2) == 0 {
			m.Prepare(id) // as the adapter does on accepting a new session: the flush joins it
		}
		var err error
		if e, err = m.EnsureOwned(ctx, id); err != nil {
			s.logf("%s create %s: %v", m.NodeID(), id, err)
			return
		}
		if o, _ := s.st.Owner(id); o.Node == m.NodeID() && o.Epoch == e {
			s.adoptAt[id] = max(s.adoptAt[id], e)
			s.ended[id] = false
			s.restored[id] = s.visibleV(id)
		}
		s.logf("%s created %s at %d", m.NodeID(), id, e)
	}
	s.seq += 2
	val := fmt.Sprintf("%s@%d#%d", m.NodeID(), e, s.step)
	if s.writes[id] == nil {
		s.writes[id] = map[string]write{}
	}
	s.writes[id][val] = write{node: m.NodeID(), epoch: e, step: s.step}
	err := s.st.WriteSession(ctx, &store.Write{Session: id, Epoch: e, Seq: s.seq, Items: []store.Item{{Key: "v", Value: []byte(val)}}})
	s.logf("%s write %s=%s: %v", m.NodeID(), id, val, err)
	if err != nil {
		return
	}
	if o, _ := s.st.Owner(id); o.Node == m.NodeID() && o.Epoch == e && !o.Ended {
		if got := s.visibleV(id); got != val {
			s.fail("I1: %s acknowledged %s=%s as the owner at epoch %d, but %q is visible", m.NodeID(), id, val, e, got)
		}
	}
}

// end ends a session the way the adapter's flush of an End does.
func (s *sim) end(ctx context.Context, m *Manager, id string) {
	e, ok := m.Epoch(id)
	if !ok || !m.LeaseValid() {
		return
	}
	s.seq += 2
	err := s.st.WriteSession(ctx, &store.Write{Session: id, Epoch: e, Seq: s.seq, Ended: true})
	if err == nil {
		err = m.Ended(ctx, id)
	}
	s.logf("%s end %s at %d: %v", m.NodeID(), id, e, err)
	if err != nil {
		return
	}
	if o, _ := s.st.Owner(id); o.Ended && o.Epoch == e+1 {
		s.ended[id] = true
		if got := s.visibleV(id); got != "" {
			s.fail("I4: %s ended %s at epoch %d, but %q is visible", m.NodeID(), id, e, got)
		}
	}
}

func (s *sim) adopt(ctx context.Context, m *Manager, id string, force bool) {
	a, err := m.Adopt(ctx, id, AdoptOptions{Force: force})
	s.logf("%s adopt %s force=%v: %v", m.NodeID(), id, force, errOr(err, a))
	if err != nil {
		return
	}
	got := ""
	for _, it := range a.Items {
		if it.Key == "v" {
			got = string(it.Value)
		}
	}
	if v := s.visibleV(id); v != got {
		s.fail("I2: %s adopted %s at epoch %d restoring %q, but %q is visible", m.NodeID(), id, a.Epoch, got, v)
	}
	s.adoptAt[id] = max(s.adoptAt[id], a.Epoch)
	s.restored[id] = got
	s.ended[id] = false
}

func errOr(err error, a *Adopted) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("epoch %d from %s", a.Epoch, a.PreviousOwner)
}

func (s *sim) visibleV(id string) string {
	for _, it := range s.st.Visible(id) {
		if it.Key == "v" {
			return string(it.Value)
		}
	}
	return ""
}

// check verifies the state after every step.
func (s *sim) check() {
	for _, id := range simSessions {
		v := s.visibleV(id)
		if s.ended[id] && v != "" {
			s.fail("I4: %s ended, yet %q is visible", id, v)
		}
		if v != "" && v != s.restored[id] {
			w, ok := s.writes[id][v]
			switch {
			case !ok:
				s.fail("I2: %s shows %q, which nobody wrote", id, v)
			case w.epoch < s.adoptAt[id]:
				s.fail("I2: %s shows %q written at epoch %d by %s, below its adoption at epoch %d", id, v, w.epoch, w.node, s.adoptAt[id])
			}
		}
		o, _ := s.st.Owner(id)
		for _, m := range s.nodes {
			e, ok := m.Epoch(id)
			k := [2]string{m.NodeID(), id}
			if !ok {
				delete(s.held, k)
				continue
			}
			if prev, seen := s.held[k]; seen && e < prev {
				s.fail("I3: %s's epoch of %s went down from %d to %d", m.NodeID(), id, prev, e)
			}
			if e > o.Epoch {
				s.fail("I3: %s holds %s at epoch %d, above the row's %d", m.NodeID(), id, e, o.Epoch)
			}
			s.held[k] = e
		}
	}
}
