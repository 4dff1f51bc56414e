package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// table writes aligned columns.
type table struct{ w *tabwriter.Writer }

func newTable(w io.Writer) *table { return &table{tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)} }

func (t *table) row(cells ...string) { fmt.Fprintln(t.w, strings.Join(cells, "\t")) }

func (t *table) flush() { _ = t.w.Flush() }

// quote prints b as a Go string literal: printable UTF-8 as is, everything
// else escaped, so any key or value shows on one line and unambiguously.
// When max > 0 and b is longer, only its first max bytes are shown (fewer
// when the cut would fall inside a UTF-8 character, which would show as
// escaped bytes), followed by how many more there are.
func quote(b []byte, max int) string {
	if max > 0 && len(b) > max {
		cut := max
		for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(b[cut]); i++ {
			cut--
		}
		if r, size := utf8.DecodeRune(b[cut:]); (r == utf8.RuneError && size <= 1) || cut+size <= max {
			cut = max // no character cut in two there: cut where asked
		}
		more := len(b) - cut
		return strconv.Quote(string(b[:cut])) + fmt.Sprintf("... (%d more %s)", more, plural(more, "byte", "bytes"))
	}
	return strconv.Quote(string(b))
}

// timeAndAge prints t in UTC with milliseconds, and how long ago it was.
func timeAndAge(t time.Time) string {
	if t.IsZero() {
		return "(unknown)"
	}
	age := time.Since(t).Round(100 * time.Millisecond)
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format("2006-01-02T15:04:05.000Z07:00"), age)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
