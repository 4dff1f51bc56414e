package adapter

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestAPIOwnsItsTypes reads the package's source as go doc does and fails
// when its exported API is expressed in another package of this module: a
// type alias (type X = ...) of any kind, or an exported type, field,
// function, method or variable whose declaration names buffer, residency
// or anything under internal/. A host must find every field it uses in
// `go doc ./adapter` and never import a building block.
func TestAPIOwnsItsTypes(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	const module = "github.com/holdover/holdover/"
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		foreign := map[string]string{} // local name -> import path, for this module's other packages
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if !strings.HasPrefix(p, module) {
				continue
			}
			local := p[strings.LastIndex(p, "/")+1:]
			if im.Name != nil {
				local = im.Name.Name
			}
			foreign[local] = p
		}
		// refs reports the module's other packages that node names.
		refs := func(node ast.Node) []string {
			var out []string
			if node == nil {
				return nil
			}
			ast.Inspect(node, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if id, ok := sel.X.(*ast.Ident); ok {
						if p, ok := foreign[id.Name]; ok {
							out = append(out, p+"."+sel.Sel.Name)
						}
					}
				}
				return true
			})
			return out
		}
		report := func(pos token.Pos, what string, node ast.Node) {
			if r := refs(node); len(r) > 0 {
				t.Errorf("%s: exported %s is expressed in %v", fset.Position(pos), what, r)
			}
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv != nil {
					if !exportedRecv(d.Recv.List[0].Type) {
						continue
					}
				}
				report(d.Pos(), "func "+d.Name.Name, d.Type)
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						if s.Assign.IsValid() {
							t.Errorf("%s: type %s is an alias; define the adapter's own type and translate at the boundary", fset.Position(s.Pos()), s.Name.Name)
						}
						report(s.Pos(), "type "+s.Name.Name, exportedParts(s.Type))
					case *ast.ValueSpec:
						for i, n := range s.Names {
							if !n.IsExported() {
								continue
							}
							report(n.Pos(), n.Name, s.Type)
							if i < len(s.Values) {
								report(n.Pos(), n.Name, s.Values[i])
							}
						}
					}
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d files: run the test from the package's folder", checked)
	}
}

// exportedRecv reports whether a method's receiver is an exported type.
func exportedRecv(e ast.Expr) bool {
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	id, ok := e.(*ast.Ident)
	return ok && id.IsExported()
}

// exportedParts is what go doc shows of a type: a struct's exported fields
// (unexported ones are hidden), an interface's methods, anything else whole.
func exportedParts(e ast.Expr) ast.Node {
	st, ok := e.(*ast.StructType)
	if !ok {
		return e
	}
	var shown []ast.Expr
	for _, f := range st.Fields.List {
		exported := len(f.Names) == 0 // embedded: shown
		for _, n := range f.Names {
			exported = exported || n.IsExported()
		}
		if exported {
			shown = append(shown, f.Type)
		}
	}
	return &ast.CompositeLit{Elts: shown}
}
