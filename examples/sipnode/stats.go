package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Stats are the node's counters, served as JSON on SIPNODE_STATS (/stats)
// and logged when it stops.
type Stats struct {
	invites, answered, acks, inDialog, byes, registers atomic.Int64
	unknown, unavailable, notFound, refused            atomic.Int64
	raced, holdTimeouts, adoptErrors                   atomic.Int64

	mu                   sync.Mutex
	adoptedDialogs       int64
	adoptedRegistrations int64
	held                 int64     // adoptions that waited for a live owner's lease
	adoptMS              []float64 // each successful Adopt call (the latest, see keepLast)
	heldMS               []float64 // each adoption's wait for the owner's lease
	answeredAdopted      map[string]int64
}

func newStats() *Stats { return &Stats{answeredAdopted: map[string]int64{}} }

func (s *Stats) adoption(session string, o outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.HasPrefix(session, regPrefix) {
		s.adoptedRegistrations++
	} else {
		s.adoptedDialogs++
	}
	if o.Held > 0 {
		s.held++
	}
	s.adoptMS = keepLast(append(s.adoptMS, ms(o.AdoptTime)))
	s.heldMS = keepLast(append(s.heldMS, ms(o.Held)))
}

// keepLast keeps a list of figures at most 2×maxFigures long, dropping the
// oldest down to maxFigures when it grows past that.
func keepLast(v []float64) []float64 {
	if len(v) > 2*maxFigures {
		v = append(v[:0], v[len(v)-maxFigures:]...)
	}
	return v
}

// maxFigures is how many of the latest adoptions /stats lists at least.
const maxFigures = 10000

func (s *Stats) answeredAfterAdoption(m sip.RequestMethod) {
	s.mu.Lock()
	s.answeredAdopted[string(m)]++
	s.mu.Unlock()
}

// Snapshot is Stats as JSON.
type Snapshot struct {
	Invites              int64            `json:"invites"`
	Answered             int64            `json:"answered"`
	Acks                 int64            `json:"acks"`
	InDialog             int64            `json:"in_dialog"`
	Byes                 int64            `json:"byes"`
	Registers            int64            `json:"registers"`
	Answered481          int64            `json:"answered_481"`
	Answered503          int64            `json:"answered_503"`
	NotFound             int64            `json:"not_found"`
	Refused              int64            `json:"commits_refused"`
	Raced                int64            `json:"adoptions_raced"`
	HoldTimeouts         int64            `json:"hold_timeouts"`
	AdoptErrors          int64            `json:"adopt_errors"`
	AdoptedDialogs       int64            `json:"adopted_dialogs"`
	AdoptedRegistrations int64            `json:"adopted_registrations"`
	Held                 int64            `json:"held"`
	AdoptMS              []float64        `json:"adopt_ms"`
	HeldMS               []float64        `json:"held_ms"`
	AnsweredAfterAdopt   map[string]int64 `json:"answered_after_adoption"`
	Resident             int              `json:"resident_sessions"`
	At                   time.Time        `json:"at"`
}

func (n *Node) snapshot() Snapshot {
	s := n.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	aa := make(map[string]int64, len(s.answeredAdopted))
	for k, v := range s.answeredAdopted {
		aa[k] = v
	}
	return Snapshot{
		Invites: s.invites.Load(), Answered: s.answered.Load(), Acks: s.acks.Load(), InDialog: s.inDialog.Load(),
		Byes: s.byes.Load(), Registers: s.registers.Load(), Answered481: s.unknown.Load(),
		Answered503: s.unavailable.Load(), NotFound: s.notFound.Load(), Refused: s.refused.Load(),
		Raced: s.raced.Load(), HoldTimeouts: s.holdTimeouts.Load(), AdoptErrors: s.adoptErrors.Load(),
		AdoptedDialogs: s.adoptedDialogs, AdoptedRegistrations: s.adoptedRegistrations, Held: s.held,
		AdoptMS: append([]float64(nil), s.adoptMS...), HeldMS: append([]float64(nil), s.heldMS...),
		AnsweredAfterAdopt: aa, Resident: n.table.Len(), At: time.Now(),
	}
}

// statsHandler serves /stats.
func (n *Node) statsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(n.snapshot())
	})
	return mux
}
