package harness

import "testing"

func TestRowRate(t *testing.T) {
	out := "Op rate                   :   16,241 op/s  [WRITE: 16,241 op/s]\nRow rate                  :   16,241 row/s [WRITE: 16,241 row/s]\n"
	m := rowRate.FindStringSubmatch(out)
	if m == nil || m[1] != "16,241" {
		t.Fatalf("row rate %q", m)
	}
}
