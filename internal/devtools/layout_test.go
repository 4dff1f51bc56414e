package devtools_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/holdover/holdover/"

// TestLayout checks the README's Layout section against the tree (every
// folder it names exists; every folder holding Go code is under one it
// names) and the import rules it states against the code.
func TestLayout(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..")) // tests run in their package's folder
	if err != nil {
		t.Fatal(err)
	}
	listed := layoutFolders(t, root)
	pkgs := modulePackages(t, root)

	for _, dir := range listed {
		if st, err := os.Stat(filepath.Join(root, dir)); err != nil || !st.IsDir() {
			t.Errorf("README Layout names %s/, which is not a folder of the tree", dir)
		}
	}
	for dir := range pkgs {
		if !slices.ContainsFunc(listed, func(l string) bool { return dir == l || strings.HasPrefix(dir, l+"/") }) {
			t.Errorf("folder %s/ holds Go code but the README's Layout names no folder it is in", dir)
		}
	}

	engine := []string{"adapter", "buffer", "residency", "internal/store", "internal/memstore", "internal/storeconf", "internal/inspect"}
	allowed := map[string][]string{
		"buffer":                     {},
		"residency":                  {"internal/store"},
		"internal/store":             {"buffer"},
		"internal/storeconf":         {"internal/store"},
		"adapter":                    {"buffer", "residency", "internal/store", "internal/storeconf"},
		"internal/testbench/wire":    {},
		"internal/testbench/loadgen": {"internal/testbench/wire"},
		"internal/testbench/soak":    {"internal/testbench/wire", "internal/testbench/loadgen"},
	}
	for pkg, may := range allowed {
		p, ok := pkgs[pkg]
		if !ok {
			t.Errorf("package %s is missing", pkg)
			continue
		}
		for _, imp := range p.module {
			if !slices.Contains(may, imp) {
				t.Errorf("%s imports %s; the Layout allows only %v", pkg, imp, may)
			}
		}
	}
	for _, pkg := range engine {
		for _, dep := range closure(pkgs, pkg) {
			if strings.HasPrefix(dep, "internal/testbench") || strings.HasPrefix(dep, "internal/devtools") {
				t.Errorf("engine package %s depends on %s", pkg, dep)
			}
		}
	}
	for _, pkg := range []string{"internal/testbench/loadgen", "internal/testbench/soak", "internal/testbench/wire"} {
		for _, dep := range closure(pkgs, pkg) {
			if dep == "adapter" {
				t.Errorf("%s links the adapter", pkg)
			}
			for _, ext := range pkgs[dep].external {
				if strings.Contains(ext, "cassandra-gocql-driver") {
					t.Errorf("%s links the Cassandra driver (through %s)", pkg, dep)
				}
			}
		}
	}
}

// layoutFolders reads the folders the README's Layout block names, a line
// indented by two spaces being a folder of the last one not indented.
func layoutFolders(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## Layout")
	if i < 0 {
		t.Fatal("README.md has no Layout section")
	}
	s = s[i:]
	start := strings.Index(s, "\n```\n")
	end := strings.Index(s[start+5:], "\n```")
	if start < 0 || end < 0 {
		t.Fatal("the Layout section has no code block")
	}
	entry := regexp.MustCompile(`^( *)(\S+)/\s`)
	var out []string
	parent := ""
	for _, line := range strings.Split(s[start+5:start+5+end], "\n") {
		m := entry.FindStringSubmatch(line + " ")
		if m == nil {
			t.Errorf("Layout line %q does not start with a folder", line)
			continue
		}
		if m[1] == "" {
			parent = m[2]
			out = append(out, m[2])
		} else {
			out = append(out, parent+"/"+m[2])
		}
	}
	return out
}

type pkg struct {
	module   []string // imports of this module, relative to it
	external []string
}

// modulePackages parses the imports of every non-test Go file of the tree,
// whatever its build tags, by folder.
func modulePackages(t *testing.T, root string) map[string]*pkg {
	t.Helper()
	pkgs := map[string]*pkg{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin" || rel == "e2e/out" || rel == "bench") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(rel))
		p := pkgs[dir]
		if p == nil {
			p = &pkg{}
			pkgs[dir] = p
		}
		for _, im := range f.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			switch {
			case strings.HasPrefix(path, module):
				if rel := strings.TrimPrefix(path, module); !slices.Contains(p.module, rel) {
					p.module = append(p.module, rel)
				}
			case strings.Contains(path, "."):
				if !slices.Contains(p.external, path) {
					p.external = append(p.external, path)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// closure lists pkg and every package of the module it imports, directly or not.
func closure(pkgs map[string]*pkg, from string) []string {
	seen := []string{from}
	for i := 0; i < len(seen); i++ {
		if p := pkgs[seen[i]]; p != nil {
			for _, d := range p.module {
				if !slices.Contains(seen, d) {
					seen = append(seen, d)
				}
			}
		}
	}
	return seen
}
