//go:build drills

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// config is the drills' configuration, from the environment.
type config struct {
	cassandraImage   string        // HOLDOVER_E2E_CASSANDRA_IMAGE
	nodeImage        string        // HOLDOVER_E2E_NODE_IMAGE
	cassandraHeap    string        // HOLDOVER_E2E_CASSANDRA_HEAP: heap of a lone Cassandra
	ringHeap         string        // HOLDOVER_E2E_RING_HEAP: heap of each node of a ring
	cassandraNewSize string        // HOLDOVER_E2E_CASSANDRA_NEWSIZE
	cassandraStart   time.Duration // HOLDOVER_E2E_CASSANDRA_START: time a Cassandra node gets to answer CQL
	nodeStart        time.Duration // time a holdover node gets to be ready
	sessions         int           // HOLDOVER_E2E_SESSIONS: sessions per drill
	rate             float64       // HOLDOVER_E2E_RATE: events per second per drill
	outDir           string        // HOLDOVER_E2E_OUT: where the report and logs go
	reportName       string        // HOLDOVER_E2E_REPORT: the report's file name in outDir
	drills           []string      // HOLDOVER_DRILLS: drills to run, in order (default all)
	keep             bool          // HOLDOVER_E2E_KEEP=1: leave the containers for inspection
}

func loadConfig() (config, error) {
	c := config{
		cassandraImage:   os.Getenv("HOLDOVER_E2E_CASSANDRA_IMAGE"),
		nodeImage:        env("HOLDOVER_E2E_NODE_IMAGE", "holdover/node:dev"),
		cassandraHeap:    env("HOLDOVER_E2E_CASSANDRA_HEAP", "768M"),
		ringHeap:         env("HOLDOVER_E2E_RING_HEAP", "512M"),
		cassandraNewSize: env("HOLDOVER_E2E_CASSANDRA_NEWSIZE", "128M"),
		nodeStart:        90 * time.Second,
		outDir:           env("HOLDOVER_E2E_OUT", "out"),
		reportName:       env("HOLDOVER_E2E_REPORT", "report.json"),
		keep:             os.Getenv("HOLDOVER_E2E_KEEP") == "1",
	}
	var errs []string
	var err error
	if c.cassandraImage == "" { // the image e2e/images/build.sh builds for cassandra.sh's release
		v, err := cassandratest.Version()
		if err != nil {
			errs = append(errs, "HOLDOVER_E2E_CASSANDRA_IMAGE: unset, and no default: "+err.Error())
		}
		c.cassandraImage = "holdover/cassandra:" + v
	}
	if c.cassandraStart, err = time.ParseDuration(env("HOLDOVER_E2E_CASSANDRA_START", "240s")); err != nil {
		errs = append(errs, "HOLDOVER_E2E_CASSANDRA_START: "+err.Error())
	}
	if c.sessions, err = strconv.Atoi(env("HOLDOVER_E2E_SESSIONS", "300")); err != nil || c.sessions < 8 || c.sessions > 100000 {
		errs = append(errs, "HOLDOVER_E2E_SESSIONS: a number from 8 to 100000")
	}
	if c.rate, err = strconv.ParseFloat(env("HOLDOVER_E2E_RATE", "300"), 64); err != nil || c.rate <= 0 || c.rate > 100000 {
		errs = append(errs, "HOLDOVER_E2E_RATE: events per second, above 0 and at most 100000")
	}
	all := drillNames()
	c.drills = all
	if v := strings.TrimSpace(os.Getenv("HOLDOVER_DRILLS")); v != "" && v != "all" {
		c.drills = nil
		for _, name := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			if !slices.Contains(all, name) {
				errs = append(errs, fmt.Sprintf("HOLDOVER_DRILLS: unknown drill %q (known: %s)", name, strings.Join(all, ", ")))
				continue
			}
			c.drills = append(c.drills, name)
		}
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("invalid configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return c, nil
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// suite is what the drills of one run share: the engine, the configuration,
// the Cassandra ring in use and the report.
type suite struct {
	cfg    config
	e      *engine
	ring   *ring
	report report
	t0     time.Time
}

var theSuite *suite

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "drills:", err)
		return 2
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	run := hex.EncodeToString(b)
	e, err := openEngine(run)
	if err != nil {
		fmt.Fprintln(os.Stderr, "drills: FAIL:", err)
		return 1
	}
	for _, img := range []string{cfg.cassandraImage, cfg.nodeImage} {
		if err := e.requireImage(img); err != nil {
			fmt.Fprintln(os.Stderr, "drills: FAIL:", err)
			return 1
		}
	}
	theSuite = &suite{cfg: cfg, e: e, t0: time.Now()}
	code := m.Run()
	if !cfg.keep {
		e.close()
	} else {
		fmt.Fprintf(os.Stderr, "drills: HOLDOVER_E2E_KEEP=1: containers and networks of run %s are left running\n", run)
	}
	if len(theSuite.report.Drills) > 0 {
		path := filepath.Join(cfg.outDir, cfg.reportName)
		if err := theSuite.report.write(path); err != nil {
			fmt.Fprintln(os.Stderr, "drills: writing the report:", err)
			code = 1
		}
		fmt.Println()
		fmt.Print(theSuite.report.table())
		fmt.Printf("report: %s (%d drills in %.0f s)\n", path, len(theSuite.report.Drills), time.Since(theSuite.t0).Seconds())
		if !theSuite.report.passed() && code == 0 {
			code = 1
		}
	}
	return code
}

// ringOf returns a running ring of n Cassandra nodes, replacing the current
// one if it has another size (two rings would only compete for the cores).
func (s *suite) ringOf(ctx context.Context, t *testing.T, n int) (*ring, error) {
	t.Helper()
	if s.ring != nil && len(s.ring.nodes) == n {
		err := s.ring.healthy()
		if err == nil {
			return s.ring, nil
		}
		t.Logf("the Cassandra ring in use is unhealthy (%v); starting a new one", err)
	}
	if s.ring != nil {
		s.ring.remove()
		s.ring = nil
	}
	t0 := time.Now()
	r, err := startRing(ctx, s.e, s.cfg, fmt.Sprintf("ring%d", n), n, t.Logf)
	if err != nil {
		if r != nil {
			r.saveLogs(filepath.Join(s.cfg.outDir, "logs", "cassandra"))
			r.remove()
		}
		return nil, fmt.Errorf("Cassandra could not start (the drills need it; they never skip): %w", err)
	}
	t.Logf("Cassandra ring of %d ready in %.1f s", n, time.Since(t0).Seconds())
	s.ring = r
	return r, nil
}

// healthy reports whether every node of the ring answers CQL.
func (r *ring) healthy() error {
	for _, c := range r.nodes {
		if _, err := releaseVersion(c.ip(r.data)); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return nil
}

func (r *ring) saveLogs(dir string) {
	for _, c := range r.nodes {
		c.saveLogs(dir)
	}
}

func (r *ring) remove() {
	for _, c := range r.nodes {
		c.remove()
	}
	r.e.removeNetwork(r.data)
	r.e.removeNetwork(r.front)
}
