package node

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/adapter"
)

// docRow is a row of the table of variables in docs/node-api.md.
var docRow = regexp.MustCompile("(?m)^\\| `(HOLDOVER_[A-Z_]+)` \\| `([^`]*)` \\|")

// nodeDocProblems lists where docs/node-api.md's table and the comments of
// Config disagree with nodeVars.
func nodeDocProblems(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../../docs/node-api.md")
	if err != nil {
		t.Fatal(err)
	}
	var probs []string
	documented := map[string]string{}
	for _, m := range docRow.FindAllStringSubmatch(string(raw), -1) {
		documented[m[1]] = m[2]
	}
	fields := fieldDocs(t)
	for _, nv := range nodeVars {
		switch def, ok := documented[nv.name]; {
		case !ok:
			probs = append(probs, "docs/node-api.md has no row for "+nv.name)
		case def != nv.def:
			probs = append(probs, "docs/node-api.md gives "+nv.name+" the default "+def+", nodeVars "+nv.def)
		}
		delete(documented, nv.name)
		d := fields[nv.field]
		if !strings.Contains(d, nv.name) {
			probs = append(probs, "the comment of Config."+nv.field+" does not name "+nv.name)
		}
		if !strings.Contains(d, "default "+nv.def) && !strings.Contains(d, `default "`+nv.def+`"`) {
			probs = append(probs, "the comment of Config."+nv.field+" does not say default "+nv.def)
		}
	}
	for v := range documented {
		probs = append(probs, "docs/node-api.md documents "+v+", which is no variable of the node")
	}
	return probs
}

// fieldDocs returns the doc comment of every field of Config, on one line.
func fieldDocs(t *testing.T) map[string]string {
	f, err := parser.ParseFile(token.NewFileSet(), "config.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		if ts, ok := n.(*ast.TypeSpec); ok && ts.Name.Name == "Config" {
			for _, fld := range ts.Type.(*ast.StructType).Fields.List {
				for _, name := range fld.Names {
					docs[name.Name] = strings.Join(strings.Fields(fld.Doc.Text()), " ")
				}
			}
			return false
		}
		return true
	})
	return docs
}

// The node's variables, their defaults in docs/node-api.md and in the
// comments of Config are those of nodeVars.
func TestNodeConfigDocs(t *testing.T) {
	for _, p := range nodeDocProblems(t) {
		t.Error(p)
	}
}

// A default changed in nodeVars alone is the one configFrom applies, and
// the docs check then fails.
func TestNodeConfigDefaultHasOneSource(t *testing.T) {
	i := 1 // HOLDOVER_NODE_DRAIN_TIMEOUT
	saved := nodeVars[i]
	t.Cleanup(func() { nodeVars[i] = saved })
	nodeVars[i].def = "42s"
	c, err := configFrom(func(string) string { return "" }, func() (adapter.Config, error) { return adapter.DefaultConfig(), nil })
	if err != nil || c.DrainTimeout != 42*time.Second {
		t.Errorf("DrainTimeout %v, err %v; want nodeVars' 42s", c.DrainTimeout, err)
	}
	if probs := nodeDocProblems(t); len(probs) != 2 {
		t.Errorf("the docs check found %q; want the doc table and the comment", probs)
	}
}
