package soak

import "sync"

// nodeState is a node as the nemesis left it; the workload routes by it, as
// a load balancer with health checks would.
type nodeState uint8

const (
	nodeUp nodeState = iota
	nodeDown
	nodePaused
	nodeDraining
)

func (s nodeState) String() string {
	return [...]string{"up", "down", "paused", "draining"}[s]
}

// view is the workload's picture of the nodes: state and incarnation (one
// more at each restart).
type view struct {
	mu     sync.RWMutex
	state  []nodeState
	inc    []int
	url    []string
	zombie []zombie
}

// zombie is the old process of a node replaced while it was stopped
// (EpReplace): it still runs, at its old address, with the node's ID.
type zombie struct {
	url   string
	state nodeState // nodeDown when there is none
	inc   int       // the incarnation it was
}

func (v *view) urlOf(i int) string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.url[i]
}

func (v *view) zombieOf(i int) zombie {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.zombie[i]
}

// replaced records that node i runs again at url, in a new incarnation,
// while its old process stays, stopped, at its old address.
func (v *view) replaced(i int, url string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.zombie[i] = zombie{url: v.url[i], state: nodePaused, inc: v.inc[i]}
	v.url[i] = url
	v.inc[i]++
	v.state[i] = nodeUp
}

func (v *view) setZombie(i int, st nodeState) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.zombie[i].state = st
}

func (v *view) get(i int) (nodeState, int) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.state[i], v.inc[i]
}

func (v *view) set(i int, st nodeState, restarted bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.state[i] = st
	if restarted {
		v.inc[i]++
	}
}
