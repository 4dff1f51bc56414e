package soak

import (
	"fmt"
	"strings"
	"time"
)

// describe names an observation: what, which record, where.
func describe(r Record) string {
	if r.Type == RecFinal {
		return fmt.Sprintf("the final read #%d from Cassandra", r.Seq)
	}
	return fmt.Sprintf("%s #%d on %s", r.Kind, r.Seq, orDash(r.Node))
}

func describeNode(n *tnode) string {
	switch {
	case n.kind == kAbsent:
		return "no session"
	case n.kind == kEnded:
		return fmt.Sprintf("the end (version %d, #%d)", n.version, n.op)
	case n.unknown:
		return fmt.Sprintf("version %d (#%d)", n.version, n.op)
	}
	return fmt.Sprintf("version %d (digest %s, #%d)", n.version, short(n.digest), n.op)
}

func describeRequired(n *tnode) string {
	if n.kind == kEnded {
		return fmt.Sprintf("the end (version %d, #%d) was acknowledged by %s at %s", n.version, n.op, n.node, clock(n.ackAt))
	}
	if n.durable && !n.acked {
		return fmt.Sprintf("version %d (#%d) had been restored", n.version, n.op)
	}
	return fmt.Sprintf("version %d (#%d) was acknowledged by %s at %s", n.version, n.op, n.node, clock(n.ackAt))
}

func describeHead(s *sess) string {
	parts := make([]string, len(s.head))
	for i, h := range s.head {
		parts[i] = describeNode(h)
	}
	return strings.Join(parts, " or ")
}

func short(d Digest) string {
	if len(d) > 12 {
		return string(d[:12])
	}
	return string(d)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clock(t time.Time) string { return t.Format("15:04:05.000") }
