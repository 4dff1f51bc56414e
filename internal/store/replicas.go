package store

import "slices"

// replicaGroups groups idx by the first replica of the partition of
// session(i), the host the driver's token-aware policy sends a request
// about that partition to. With one host every index shares it.
func (st *Store) replicaGroups(idx []int, session func(i int) string) [][]int {
	if len(idx) <= 1 || len(st.s.GetHosts()) <= 1 {
		return [][]int{idx}
	}
	var (
		groups [][]int
		hosts  []string
	)
	for _, i := range idx {
		host := ""
		if h := st.policy.Pick(route{keyspace: st.opts.Keyspace, table: st.opts.Tables.State, key: session(i)})(); h != nil {
			host = h.Info().HostID()
		}
		j := slices.Index(hosts, host)
		if j < 0 {
			j = len(hosts)
			hosts = append(hosts, host)
			groups = append(groups, nil)
		}
		groups[j] = append(groups[j], i)
	}
	return groups
}

// eachGroup runs fn on every group, concurrently when there are several.
func eachGroup(groups [][]int, fn func(idx []int)) {
	if len(groups) == 1 {
		fn(groups[0])
		return
	}
	done := make(chan struct{}, len(groups))
	for _, g := range groups {
		go func() {
			defer func() { done <- struct{}{} }()
			fn(g)
		}()
	}
	for range groups {
		<-done
	}
}
