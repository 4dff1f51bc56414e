package node

import (
	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/testbench/wire"
)

// Info is the body of GET /v1/info (wire.Info), with the node's families.
type Info = wire.Info

// Info describes the node.
func (n *Node) Info() Info {
	info := Info{Node: n.cfg.NodeID, FlushDelayMS: n.cfg.FlushDelay.Milliseconds(),
		Keyspace: n.cfg.Keyspace, Sessions: n.table.Len(), Families: n.cfg.Families.String()}
	var stats []adapter.FamilyStats
	if a := n.a.Load(); a != nil {
		stats = a.Stats().Buffer.Families
	}
	fams := append(adapter.Families{{}}, n.cfg.Families...)
	for _, f := range fams {
		fi := wire.FamilyInfo{Name: f.Name, Shared: f.Shared, FlushDelayMS: n.cfg.FlushDelay.Milliseconds()}
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
