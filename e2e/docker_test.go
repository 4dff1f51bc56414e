//go:build drills

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// Labels put on everything a run creates, so a run removes exactly its own
// leftovers and those of earlier runs that died.
const (
	labelE2E = "io.holdover.e2e"
	labelRun = "io.holdover.e2e.run"
	netLabel = "holdover-e2e-"
)

// engine is the Docker engine the drills run on, and what they created on it.
type engine struct {
	pool *dockertest.Pool
	run  string

	mu       sync.Mutex
	networks []*network
	ctrs     []*container
}

// network is a bridge network with a subnet of our choosing, so containers
// keep their address across a stop and start (Cassandra's identity in a ring).
type network struct {
	name, id string
	prefix   string // "172.30.12." — addresses are prefix + host number
}

func (n *network) ip(host int) string { return fmt.Sprintf("%s%d", n.prefix, host) }

// container is one container of the run.
type container struct {
	e    *engine
	name string
	id   string
	ips  map[*network]string
}

func (c *container) ip(n *network) string { return c.ips[n] }

// openEngine connects to the engine (DOCKER_HOST or the default socket) and
// removes what earlier runs left behind. It fails, never skips, when no
// engine answers.
func openEngine(run string) (*engine, error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	pool.MaxWait = 3 * time.Minute
	if err := pool.Client.Ping(); err != nil {
		return nil, fmt.Errorf("docker engine does not answer (run `make drills`, which starts one, or set DOCKER_HOST): %w", err)
	}
	e := &engine{pool: pool, run: run}
	e.removeLeftovers()
	return e, nil
}

// requireImage fails when image is not present locally: the drills never pull.
func (e *engine) requireImage(image string) error {
	if _, err := e.pool.Client.InspectImage(image); err != nil {
		return fmt.Errorf("image %s is not present (build it with `make drills-images`): %w", image, err)
	}
	return nil
}

func (e *engine) removeLeftovers() {
	cs, err := e.pool.Client.ListContainers(dc.ListContainersOptions{All: true, Filters: map[string][]string{"label": {labelE2E}}})
	if err == nil {
		for _, c := range cs {
			_ = e.pool.Client.RemoveContainer(dc.RemoveContainerOptions{ID: c.ID, Force: true, RemoveVolumes: true})
		}
	}
	ns, err := e.pool.Client.ListNetworks()
	if err == nil {
		for _, n := range ns {
			if strings.HasPrefix(n.Name, netLabel) && n.Labels[labelE2E] != "" {
				_ = e.pool.Client.RemoveNetwork(n.ID)
			}
		}
	}
}

// createNetwork makes a /24 bridge network, trying subnets until the engine
// accepts one that overlaps nothing it knows.
func (e *engine) createNetwork(name string) (*network, error) {
	full := netLabel + e.run + "-" + name
	var lastErr error
	for i := 0; i < 40; i++ {
		third := 40 + (i*7+len(e.networks)*3)%200
		prefix := fmt.Sprintf("172.30.%d.", third)
		n, err := e.pool.Client.CreateNetwork(dc.CreateNetworkOptions{
			Name:   full,
			Driver: "bridge",
			Labels: map[string]string{labelE2E: "1", labelRun: e.run},
			IPAM: &dc.IPAMOptions{Driver: "default", Config: []dc.IPAMConfig{{
				Subnet: prefix + "0/24", Gateway: prefix + "1",
			}}},
		})
		if err != nil {
			lastErr = err
			continue
		}
		nw := &network{name: full, id: n.ID, prefix: prefix}
		e.mu.Lock()
		e.networks = append(e.networks, nw)
		e.mu.Unlock()
		return nw, nil
	}
	return nil, fmt.Errorf("docker: create network %s: %w", full, lastErr)
}

// attachment puts a container on a network at a fixed host number.
type attachment struct {
	net  *network
	host int
}

// runContainer creates and starts a container on the given networks, each at
// its fixed address.
func (e *engine) runContainer(name, image string, env []string, nets ...attachment) (*container, error) {
	full := "holdover-e2e-" + e.run + "-" + name
	first := nets[0]
	c, err := e.pool.Client.CreateContainer(dc.CreateContainerOptions{
		Name: full,
		Config: &dc.Config{
			Image:    image,
			Env:      env,
			Hostname: name,
			Labels:   map[string]string{labelE2E: "1", labelRun: e.run},
		},
		HostConfig: &dc.HostConfig{},
		NetworkingConfig: &dc.NetworkingConfig{EndpointsConfig: map[string]*dc.EndpointConfig{
			first.net.id: {IPAMConfig: &dc.EndpointIPAMConfig{IPv4Address: first.net.ip(first.host)}, Aliases: []string{name}},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("docker: create %s from %s: %w", full, image, err)
	}
	ctr := &container{e: e, name: name, id: c.ID, ips: map[*network]string{first.net: first.net.ip(first.host)}}
	e.mu.Lock()
	e.ctrs = append(e.ctrs, ctr)
	e.mu.Unlock()
	for _, a := range nets[1:] {
		if err := ctr.connect(a.net, a.host); err != nil {
			return nil, err
		}
	}
	if err := e.pool.Client.StartContainer(c.ID, nil); err != nil {
		return nil, fmt.Errorf("docker: start %s: %w", full, err)
	}
	return ctr, nil
}

// connect attaches the container to n at host number host.
func (c *container) connect(n *network, host int) error {
	err := c.e.pool.Client.ConnectNetwork(n.id, dc.NetworkConnectionOptions{
		Container: c.id,
		EndpointConfig: &dc.EndpointConfig{
			IPAMConfig: &dc.EndpointIPAMConfig{IPv4Address: n.ip(host)},
			Aliases:    []string{c.name},
		},
	})
	if err != nil {
		return fmt.Errorf("docker: connect %s to %s: %w", c.name, n.name, err)
	}
	c.ips[n] = n.ip(host)
	return nil
}

// disconnect cuts the container off n (docker network disconnect --force).
func (c *container) disconnect(n *network) error {
	if err := c.e.pool.Client.DisconnectNetwork(n.id, dc.NetworkConnectionOptions{Container: c.id, Force: true}); err != nil {
		return fmt.Errorf("docker: disconnect %s from %s: %w", c.name, n.name, err)
	}
	return nil
}

// signal sends sig (such as "KILL" or "TERM") to the container's main process.
func (c *container) signal(sig dc.Signal) error {
	if err := c.e.pool.Client.KillContainer(dc.KillContainerOptions{ID: c.id, Signal: sig}); err != nil {
		return fmt.Errorf("docker: signal %d to %s: %w", sig, c.name, err)
	}
	return nil
}

func (c *container) pause() error {
	if err := c.e.pool.Client.PauseContainer(c.id); err != nil {
		return fmt.Errorf("docker: pause %s: %w", c.name, err)
	}
	return nil
}

func (c *container) unpause() error {
	if err := c.e.pool.Client.UnpauseContainer(c.id); err != nil {
		return fmt.Errorf("docker: unpause %s: %w", c.name, err)
	}
	return nil
}

// stop is docker stop: SIGTERM, then SIGKILL after grace.
func (c *container) stop(grace time.Duration) error {
	if err := c.e.pool.Client.StopContainer(c.id, uint(grace.Seconds())); err != nil {
		var nr *dc.ContainerNotRunning
		if errors.As(err, &nr) {
			return nil
		}
		return fmt.Errorf("docker: stop %s: %w", c.name, err)
	}
	return nil
}

func (c *container) start() error {
	if err := c.e.pool.Client.StartContainer(c.id, nil); err != nil {
		return fmt.Errorf("docker: start %s: %w", c.name, err)
	}
	return nil
}

// state returns whether the container runs and its exit code.
func (c *container) state() (running bool, exitCode int, err error) {
	ci, err := c.e.pool.Client.InspectContainer(c.id)
	if err != nil {
		return false, 0, err
	}
	return ci.State.Running, ci.State.ExitCode, nil
}

// alive returns nil while the container runs.
func (c *container) alive() error {
	running, code, err := c.state()
	switch {
	case err != nil:
		return err
	case !running:
		return fmt.Errorf("container %s exited with status %d; last log lines:\n%s", c.name, code, c.tail(30))
	}
	return nil
}

// waitExit waits until the container stops and returns its exit code.
func (c *container) waitExit(ctx context.Context) (int, error) {
	for {
		running, code, err := c.state()
		if err != nil {
			return 0, err
		}
		if !running {
			return code, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s still running: %w", c.name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// memoryPeak is the container's peak memory use in bytes (cgroup v1
// max_usage; 0 where the engine does not report it).
func (c *container) memoryPeak() uint64 {
	ch := make(chan *dc.Stats, 1)
	done := make(chan bool)
	go func() {
		_ = c.e.pool.Client.Stats(dc.StatsOptions{ID: c.id, Stats: ch, Stream: false, Done: done, Timeout: 10 * time.Second})
	}()
	select {
	case s, ok := <-ch:
		close(done)
		if ok && s != nil {
			return s.MemoryStats.MaxUsage
		}
	case <-time.After(15 * time.Second):
		close(done)
	}
	return 0
}

// logs returns everything the container wrote.
func (c *container) logs() string {
	var buf bytes.Buffer
	_ = c.e.pool.Client.Logs(dc.LogsOptions{
		Container: c.id, OutputStream: &buf, ErrorStream: &buf,
		Stdout: true, Stderr: true, RawTerminal: false,
	})
	return buf.String()
}

// tail returns the last n lines of the container's logs.
func (c *container) tail(n int) string {
	lines := strings.Split(strings.TrimRight(c.logs(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// saveLogs writes the container's logs to dir/<name>.log.
func (c *container) saveLogs(dir string) {
	if err := os.MkdirAll(dir, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(dir, c.name+".log"), []byte(c.logs()), 0o644)
	}
}

// remove deletes the container (and forgets it).
func (c *container) remove() {
	_ = c.e.pool.Client.RemoveContainer(dc.RemoveContainerOptions{ID: c.id, Force: true, RemoveVolumes: true})
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	for i, x := range c.e.ctrs {
		if x == c {
			c.e.ctrs = append(c.e.ctrs[:i], c.e.ctrs[i+1:]...)
			break
		}
	}
}

// removeNetwork deletes n (its containers must be gone).
func (e *engine) removeNetwork(n *network) {
	_ = e.pool.Client.RemoveNetwork(n.id)
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, x := range e.networks {
		if x == n {
			e.networks = append(e.networks[:i], e.networks[i+1:]...)
			break
		}
	}
}

// close removes every container and network of the run.
func (e *engine) close() {
	e.mu.Lock()
	ctrs := append([]*container(nil), e.ctrs...)
	nets := append([]*network(nil), e.networks...)
	e.mu.Unlock()
	for _, c := range ctrs {
		c.remove()
	}
	for _, n := range nets {
		e.removeNetwork(n)
	}
}
