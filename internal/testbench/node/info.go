package node

import (
	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/testbench/wire"
)

// Info is the body of GET /v1/info: wire.Info, which every client reads,
// and the node's families.
type Info struct {
	wire.Info
	// Families is HOLDOVER_FAMILIES as the node reads it; "" when none is
	// configured.
	Families string `json:"families"`
	// FamilyStats lists the sessions of no family first (Name ""), then each
	// configured family in HOLDOVER_FAMILIES's order.
	FamilyStats []FamilyInfo `json:"family_stats"`
}

// FamilyInfo is one family's policy and its figures in the adapter's buffer
// (adapter.Stats().Buffer.Families) at the time of the request.
type FamilyInfo struct {
	Name   string `json:"name"` // "" for the sessions of no family
	Shared bool   `json:"shared"`
	// FlushDelayMS is how long the family's changes wait before their write
	// starts: its delay, or HOLDOVER_FLUSH_DELAY.
	FlushDelayMS int64 `json:"flush_delay_ms"`
	// PendingSessions counts the family's sessions with unwritten changes;
	// OldestPendingAgeMS is the age of its oldest unwritten change (its live
	// data-loss window), 0 when nothing is pending.
	PendingSessions    int     `json:"pending_sessions"`
	OldestPendingAgeMS float64 `json:"oldest_pending_age_ms"`
	// Overloaded reports whether the family's commits are refused now
	// because its writes lag beyond its window bound (503).
	Overloaded bool `json:"overloaded"`
}

// Info describes the node.
func (n *Node) Info() Info {
	info := Info{
		Info: wire.Info{Node: n.cfg.NodeID, FlushDelayMS: n.cfg.FlushDelay.Milliseconds(),
			Keyspace: n.cfg.Keyspace, Sessions: n.table.Len()},
		Families: n.cfg.Families.String(),
	}
	var stats []adapter.FamilyStats
	if a := n.a.Load(); a != nil {
		stats = a.Stats().Buffer.Families
	}
	fams := append(adapter.Families{{}}, n.cfg.Families...)
	for _, f := range fams {
		fi := FamilyInfo{Name: f.Name, Shared: f.Shared, FlushDelayMS: n.cfg.FlushDelay.Milliseconds()}
		if f.FlushDelay > 0 {
			fi.FlushDelayMS = f.FlushDelay.Milliseconds()
		}
		for _, st := range stats {
			if st.Name == f.Name {
				fi.PendingSessions, fi.Overloaded = st.PendingSessions, st.Overloaded
				fi.OldestPendingAgeMS = float64(st.OldestPendingAge.Microseconds()) / 1000
			}
		}
		info.FamilyStats = append(info.FamilyStats, fi)
	}
	return info
}
