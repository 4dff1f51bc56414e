package node

import (
	"context"
	"errors"
	"fmt"
	"github.com/holdover/holdover/internal/testbench/wire"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/holdover/holdover/adapter"
)

// Takeover adopts every session the owner index lists under node from, whose
// lease must have expired (unless force: an operator who knows it is gone),
// and makes each resident here as it is adopted, so its next event finds it
// warm. A session resident here already (an event adopted it meanwhile) is
// left as it is.
func (n *Node) Takeover(ctx context.Context, from string, force bool) (wire.TakeoverResult, error) {
	res := wire.TakeoverResult{From: from, Node: n.cfg.NodeID}
	if from == n.cfg.NodeID {
		return res, badInput("node %q cannot take over its own sessions", from)
	}
	if err := n.Ready(); err != nil {
		return res, err
	}
	a, err := n.adapter()
	if err != nil {
		return res, err
	}
	n.takeoverBegan()
	defer n.takeoverEnded()
	var restored atomic.Int64
	rep, err := a.Takeover(ctx, from, adapter.TakeoverOptions{Force: force, OnAdopted: func(ad *adapter.Session) {
		if n.restoreAdopted(ad) {
			restored.Add(1)
		}
	}})
	res.Restored = int(restored.Load())
	res.Listed, res.Adopted, res.Skipped, res.Failed = rep.Listed, rep.Adopted, rep.Skipped, rep.Failed
	res.DurationMS = float64(rep.Duration.Microseconds()) / 1000
	for _, e := range rep.Errors {
		res.Errors = append(res.Errors, e.Error())
	}
	level := slog.LevelInfo
	if errors.Is(err, adapter.ErrOwnedElsewhere) && rep.Listed == 0 {
		level = slog.LevelDebug // refused: the node is live
	}
	n.log.Log(ctx, level, "takeover", "from", from, "listed", rep.Listed, "adopted", rep.Adopted, "restored", res.Restored,
		"skipped", rep.Skipped, "failed", rep.Failed, "duration", rep.Duration, "err", err)
	return res, err
}

// takeoverBegan and takeoverEnded bracket a takeover: meanwhile fetch
// records the sessions events took the state of (see Node.fetched).
func (n *Node) takeoverBegan() {
	n.fetchMu.Lock()
	defer n.fetchMu.Unlock()
	if n.takeovers == 0 {
		n.fetched = map[string]bool{}
	}
	n.takeovers++
}

func (n *Node) takeoverEnded() {
	n.fetchMu.Lock()
	defer n.fetchMu.Unlock()
	if n.takeovers--; n.takeovers == 0 {
		n.fetched = nil
	}
}

// fetchedByEvent notes that an event took session id's state (fetch).
func (n *Node) fetchedByEvent(id string) {
	n.fetchMu.Lock()
	defer n.fetchMu.Unlock()
	if n.fetched != nil {
		n.fetched[id] = true
	}
}

// takenByEvent reports whether an event took session id's state while
// takeovers ran.
func (n *Node) takenByEvent(id string) bool {
	n.fetchMu.Lock()
	defer n.fetchMu.Unlock()
	return n.fetched[id]
}

// restoreAdopted makes an adopted session resident, unless it already is or
// has nothing persisted (recorded, never written: as for an adopting event,
// it does not exist) or is not in the node's layout (an event finds it owned
// here and reads it back then), or an event took its state meanwhile: that
// event may have ended it, and restoring it would bring it back (an event
// can get the state without the takeover's help, by joining its adoption or
// reading it back before OnAdopted runs). It reports whether it restored it.
func (n *Node) restoreAdopted(ad *adapter.Session) bool {
	if len(ad.Items) == 0 {
		return false
	}
	s, unknown, err := decodeSession(ad.ID, ad.Items)
	if err != nil {
		n.log.Warn("taken-over session not restored", "session", ad.ID, "err", err)
		return false
	}
	if unknown > 0 {
		n.log.Warn("persisted items outside the node's layout ignored", "session", ad.ID, "items", unknown)
	}
	n.takenOver.Store(ad.ID, ad.Items)
	tx := n.table.Begin(ad.ID)
	defer tx.Rollback()
	// An event that held the transaction meanwhile took the state (fetch) and
	// may have changed or ended the session since: it is no longer ours to
	// restore.
	if _, ok := n.takenOver.LoadAndDelete(ad.ID); !ok || tx.Resident() || n.takenByEvent(ad.ID) {
		return false
	}
	tx.Restore(s)
	return true
}

func (n *Node) handleTakeover(w http.ResponseWriter, r *http.Request) {
	force, err := queryBool(r, "force")
	if err != nil {
		n.writeError(w, err)
		return
	}
	res, err := n.Takeover(r.Context(), r.PathValue("node"), force)
	var owned *adapter.OwnedElsewhereError
	switch {
	case errors.As(err, &owned) && owned.Live:
		writeJSON(w, http.StatusConflict, wire.ErrorBody{Owner: owned.Owner,
			Error: fmt.Sprintf("node %q is live (its lease has not expired): take it over with force=true only if it is known to be gone", owned.Owner)})
	case err != nil && res.Listed == 0 && res.Adopted == 0:
		n.writeError(w, err)
	default:
		// Partly done: the counts say how far it got.
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
		writeJSON(w, http.StatusOK, res)
	}
}

// watchPoll is how often a watcher asks for a takeover while the peer's
// lease is live. The adapter answers from its lease cache, which holds a
// live lease until the moment it expires, so a poll costs no query; the
// first after the expiry reads the lease and takes over.
const watchPoll = 50 * time.Millisecond

// watchPeer starts, unless one runs, a watcher of peer's lease: it takes
// over all of peer's sessions as soon as the lease expires, so that their
// next events find them resident instead of each adopting its own. It gives
// up when the peer is still live two lease TTLs on (it is alive: the next
// refusal starts another watcher), when the takeover ran, or at Close.
func (n *Node) watchPeer(peer string) {
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	if n.watching[peer] || n.closed.Load() {
		return
	}
	n.watching[peer] = true
	n.watchers.Add(1)
	go func() {
		defer n.watchers.Done()
		defer func() { n.watchMu.Lock(); delete(n.watching, peer); n.watchMu.Unlock() }()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-n.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		giveUp := time.Now().Add(2*n.cfg.LeaseTTL + time.Second)
		for {
			res, err := n.Takeover(ctx, peer, false)
			var owned *adapter.OwnedElsewhereError
			switch {
			case err == nil:
				n.log.Info("took over the sessions of a peer whose lease expired", "peer", peer,
					"listed", res.Listed, "adopted", res.Adopted, "restored", res.Restored, "skipped", res.Skipped, "failed", res.Failed)
				return
			case !errors.As(err, &owned) || !owned.Live:
				if ctx.Err() == nil && !errors.Is(err, ErrNotReady) {
					n.log.Warn("takeover of a peer whose lease expired failed", "peer", peer, "err", err)
				}
				return
			case time.Now().After(giveUp):
				return // the peer is alive
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(watchPoll):
			}
		}
	}()
}
