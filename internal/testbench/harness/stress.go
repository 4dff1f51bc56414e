package harness

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

var rowRate = regexp.MustCompile(`(?m)^Row rate\s*:\s*([0-9,]+)\s*row/s`)

// Stress runs `cassandra-stress write` (the launcher at bin) against the
// benchmark's Cassandra with n rows and `threads` client threads, and returns
// the rows per second it reports. cassandra-stress writes its own keyspace
// (keyspace1), five 34-byte columns per row.
func (e *Env) Stress(ctx context.Context, bin string, n, threads int) (float64, error) {
	args := []string{"write", fmt.Sprintf("n=%d", n), "-node", strings.Join(e.Hosts, ","),
		"-port", fmt.Sprintf("native=%d", e.Port), "-mode", "native", "cql3", "protocolVersion=4",
		"-rate", fmt.Sprintf("threads=%d", threads), "-log", "level=minimal"}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("cassandra-stress %s: %w\n%s", strings.Join(args, " "), err, tail(out.String(), 20))
	}
	m := rowRate.FindStringSubmatch(out.String())
	if m == nil {
		return 0, fmt.Errorf("cassandra-stress printed no row rate:\n%s", tail(out.String(), 20))
	}
	return strconv.ParseFloat(strings.ReplaceAll(m[1], ",", ""), 64)
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-lines):], "\n")
}
