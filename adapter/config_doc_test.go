package adapter

import (
	"flag"
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the README's configuration table from the knobs table")

// The README's configuration table sits between these markers.
const (
	readmePath       = "../README.md"
	readmeTableBegin = "<!-- BEGIN CONFIG TABLE: generated from adapter/config_knobs.go by `go generate ./adapter`; do not edit -->\n"
	readmeTableEnd   = "<!-- END CONFIG TABLE -->\n"
)

// fieldDocs returns the doc comment of every field of Config, read from
// config.go, with its lines joined by single spaces.
func fieldDocs(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "config.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "Config" {
			return true
		}
		for _, fld := range ts.Type.(*ast.StructType).Fields.List {
			for _, name := range fld.Names {
				docs[name.Name] = strings.Join(strings.Fields(fld.Doc.Text()), " ")
			}
		}
		return false
	})
	return docs
}

// meaning is the first sentence of a field's doc comment without the
// field's name, with the names of other fields replaced by their variables:
// "RetryMin is the first backoff ... up to RetryMax." gives "the first
// backoff ... up to HOLDOVER_RETRY_MAX".
func meaning(name, fieldDoc string) string {
	s := (&doc.Package{}).Synopsis(fieldDoc)
	s = strings.TrimPrefix(s, name+" ")
	for _, verb := range []string{"is ", "are "} {
		s = strings.TrimPrefix(s, verb)
	}
	s = strings.TrimSuffix(s, ".")
	return fieldName.ReplaceAllStringFunc(s, func(w string) string {
		for _, f := range configFields() {
			if f.name == w && strings.ToUpper(w) != w { // not TLS, a word too
				return f.envVar
			}
		}
		return w
	})
}

var fieldName = regexp.MustCompile(`\b[A-Z][A-Za-z]+\b`)

// boundDoc words a bound for the docs: a value, or a variable.
func boundDoc(b any) string {
	if o, ok := b.(other); ok {
		s := knobNamed(o.name).envVar
		if o.div > 1 {
			s += "/" + strconv.Itoa(o.div)
		}
		return s
	}
	if v := reflect.ValueOf(b); !v.IsZero() {
		return formatValue(v)
	}
	return "0"
}

// rangeDoc words f's bounds for the docs, as field comments state them
// after "range": "1ms..1h", "0, or 1..HOLDOVER_FLUSH_CONCURRENCY", "more
// than 0, at most 1000000 sessions per second". "" if f has none.
func rangeDoc(f *knob) string {
	if f.oneOf != nil {
		return "one of " + strings.Join(f.oneOf, ", ")
	}
	_, minIsOther := f.min.(other)
	zeroFrom := f.zero != "" && f.above && !minIsOther && reflect.ValueOf(f.min).IsZero() // 0 or more than 0: from 0
	var s string
	switch {
	case f.min != nil && f.max != nil && f.above && !zeroFrom:
		word := "more than "
		if minIsOther {
			word = "above "
		}
		s = word + boundDoc(f.min) + ", at most " + boundDoc(f.max)
	case f.min != nil && f.max != nil:
		s = boundDoc(f.min) + ".." + boundDoc(f.max)
	case f.min != nil && f.above:
		s = "more than " + boundDoc(f.min)
	case f.min != nil:
		s = "at least " + boundDoc(f.min)
	case f.max != nil:
		s = "at most " + boundDoc(f.max)
	default:
		return ""
	}
	if f.unit != "" {
		s += " " + f.unit
	}
	if f.zero != "" && !zeroFrom {
		s = "0, or " + s
	}
	return s
}

// defaultDoc words f's default as field comments state it after "default".
func defaultDoc(f *knob) string {
	switch {
	case f.defText != "":
		return f.defText
	case f.zero != "":
		return "0"
	}
	var v reflect.Value
	if v = f.defaultValue(); !v.IsValid() {
		v = reflect.Zero(reflect.TypeFor[Config]().Field(f.index).Type)
	}
	switch v.Kind() {
	case reflect.String, reflect.Slice:
		return strconv.Quote(formatValue(v))
	case reflect.Map:
		if v.Len() == 0 {
			return "empty"
		}
	}
	return formatValue(v)
}

var varName = regexp.MustCompile(`HOLDOVER_[A-Z_]+`)

// code puts the variable names in s in code spans.
func code(s string) string { return varName.ReplaceAllString(s, "`$0`") }

// readmeTable renders the README's configuration table from the knobs and
// the field comments.
func readmeTable(t *testing.T) string {
	docs := fieldDocs(t)
	var b strings.Builder
	b.WriteString("| Variable | Default | Range | Meaning |\n|---|---|---|---|\n")
	for _, f := range configFields() {
		def := "`" + defaultDoc(f) + "`"
		switch {
		case f.defText != "":
			def = f.defText
		case f.zero != "":
			def = "`0`: " + code(f.zero)
		case def == "`\"\"`" || def == "`empty`":
			def = "empty"
		case strings.HasPrefix(def, "`\""):
			def = "`" + def[2:len(def)-2] + "`"
		}
		rng := rangeDoc(f)
		if rng == "" && reflect.TypeFor[Config]().Field(f.index).Type.Kind() == reflect.Bool {
			rng = "`true` or `false`"
		}
		if f.rules != "" {
			rng = strings.TrimPrefix(rng+"; "+f.rules, "; ")
		}
		row := []string{"`" + f.envVar + "`", def, code(rng), code(meaning(f.name, docs[f.name]))}
		for i, cell := range row {
			row[i] = strings.ReplaceAll(cell, "|", `\|`)
		}
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	return b.String()
}

// The README's table of variables is the knobs table (defaults, ranges) and
// the field comments (meanings), rendered. Run go generate ./adapter (or this
// test with -update) to rewrite it after changing either.
func TestConfigREADMETable(t *testing.T) {
	raw, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	i, j := strings.Index(readme, readmeTableBegin), strings.Index(readme, readmeTableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers\n%s%s", readmePath, readmeTableBegin, readmeTableEnd)
	}
	have, want := readme[i+len(readmeTableBegin):j], readmeTable(t)
	if have == want {
		return
	}
	if !*update {
		t.Fatalf("the configuration table in %s is not the knobs table; run go generate ./adapter. It should be:\n%s", readmePath, want)
	}
	// Rewrite only between the markers: others edit the rest of the file.
	out := readme[:i+len(readmeTableBegin)] + want + readme[j:]
	if err := os.WriteFile(readmePath, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("rewrote the configuration table in %s", readmePath)
}

// Every field's doc comment, which go doc shows, names its variable and
// states the default and the range the knobs table holds.
func TestConfigFieldDocsMatchKnobs(t *testing.T) {
	docs := fieldDocs(t)
	for _, f := range configFields() {
		d := docs[f.name]
		if !strings.Contains(d, f.envVar) {
			t.Errorf("the comment of %s does not name %s", f.name, f.envVar)
		}
		if want := "default " + defaultDoc(f); !strings.Contains(d, want) {
			t.Errorf("the comment of %s does not say %q", f.name, want)
		}
		if r := rangeDoc(f); r != "" && !strings.Contains(d, r) {
			t.Errorf("the comment of %s does not say %q", f.name, r)
		}
		if meaning(f.name, d) == "" {
			t.Errorf("the comment of %s has no first sentence for the README", f.name)
		}
	}
}

// The variables the knobs' words refer to exist.
func TestConfigKnobWordsNameVariables(t *testing.T) {
	known := map[string]bool{}
	for _, f := range configFields() {
		known[f.envVar] = true
	}
	for _, f := range configFields() {
		for _, v := range varName.FindAllString(f.zero+" "+f.rules+" "+f.unit, -1) {
			if !known[v] {
				t.Errorf("knob %s mentions %s, which is no variable", f.name, v)
			}
		}
	}
}

// docDefault finds a default stated in prose: "`HOLDOVER_FLUSH_DELAY`,
// default 100 ms" or "`HOLDOVER_MAX_VALUE_BYTES` (default 1 MiB)".
var docDefault = regexp.MustCompile("`(HOLDOVER_[A-Z_]+)`(?:,| \\()\\s*default\\s+(\\d[\\d.]*(?:\\s?[A-Za-z]+\\b)?)")

// The defaults the README and docs/ state in passing are the table's.
func TestConfigDocsStateTheTableDefaults(t *testing.T) {
	files, _ := filepath.Glob("../docs/*.md")
	files = append(files, readmePath)
	byVar := map[string]*knob{}
	for _, f := range configFields() {
		byVar[f.envVar] = f
	}
	found := 0
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range docDefault.FindAllStringSubmatchIndex(string(raw), -1) {
			v, stated := string(raw[m[2]:m[3]]), string(raw[m[4]:m[5]])
			f := byVar[v]
			if f == nil {
				continue // not an adapter variable (the reference node's)
			}
			found++
			line := 1 + strings.Count(string(raw[:m[0]]), "\n")
			if !sameDefault(f, stated) {
				t.Errorf("%s:%d says %s defaults to %q; the knobs table says %s", file, line, v, stated, defaultDoc(f))
			}
		}
	}
	if found == 0 {
		t.Error("no default found in the docs: is the pattern still right?")
	}
	t.Logf("%d defaults stated in the docs checked", found)
}

// sameDefault reports whether text, a default as prose writes it ("100 ms",
// "1 MiB", "10 days", "8"), is f's default.
func sameDefault(f *knob, text string) bool {
	want := f.defaultValue()
	if !want.IsValid() {
		want = reflect.Zero(reflect.TypeFor[Config]().Field(f.index).Type)
	}
	s := strings.ReplaceAll(text, " ", "")
	if n, ok := strings.CutSuffix(strings.TrimSuffix(s, "s"), "day"); ok {
		s = n + "*24h"
		if d, err := strconv.Atoi(n); err == nil {
			s = strconv.Itoa(24*d) + "h"
		}
	}
	got := reflect.New(want.Type())
	switch p := got.Interface().(type) {
	case *time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return false
		}
		*p = d
	case *ByteSize:
		if err := p.UnmarshalText([]byte(s)); err != nil {
			return false
		}
	default:
		if _, err := fmt.Sscan(s, got.Interface()); err != nil {
			return false
		}
	}
	return reflect.DeepEqual(got.Elem().Interface(), want.Interface())
}
