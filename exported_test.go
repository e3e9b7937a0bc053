package flags

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// exportedIdentifiers walks the non-test Go files of dir and returns every
// exported identifier (types, functions, methods, constants, variables and
// the exported fields of exported struct types), and those of them without
// a doc comment. A constant or variable in a documented group counts as
// documented; so does a field with a trailing comment.
func exportedIdentifiers(t *testing.T, dir string) (all, undocumented []string, pkgDoc bool) {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var c docCensus
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		pkgDoc = pkgDoc || f.Doc != nil
		c.addFile(filepath.Base(path), f)
	}
	sort.Strings(c.undocumented)
	return c.all, c.undocumented, pkgDoc
}

// docCensus collects exported identifiers, named "file: Name", and those
// of them without a doc comment.
type docCensus struct {
	all, undocumented []string
}

func (c *docCensus) note(name string, documented bool) {
	c.all = append(c.all, name)
	if !documented {
		c.undocumented = append(c.undocumented, name)
	}
}

func (c *docCensus) addFile(file string, f *ast.File) {
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			c.addFunc(file, d)
		case *ast.GenDecl:
			c.addGenDecl(file, d)
		}
	}
}

// addFunc notes an exported function or an exported method of an exported
// type, as Type.Method.
func (c *docCensus) addFunc(file string, d *ast.FuncDecl) {
	if !d.Name.IsExported() || !exportedReceiver(d) {
		return
	}
	name := d.Name.Name
	if d.Recv != nil {
		name = receiverName(d) + "." + name
	}
	c.note(file+": "+name, d.Doc != nil)
}

// addGenDecl notes the exported types, constants and variables of a
// declaration; the group's doc comment documents each of them.
func (c *docCensus) addGenDecl(file string, d *ast.GenDecl) {
	for _, spec := range d.Specs {
		switch s := spec.(type) {
		case *ast.TypeSpec:
			c.addType(file, s, d.Doc != nil)
		case *ast.ValueSpec:
			for _, n := range s.Names {
				if n.IsExported() {
					c.note(file+": "+n.Name, s.Doc != nil || s.Comment != nil || d.Doc != nil)
				}
			}
		}
	}
}

// addType notes an exported type and, for a struct, its exported fields,
// which a trailing comment documents as well as a doc comment.
func (c *docCensus) addType(file string, s *ast.TypeSpec, groupDocumented bool) {
	if !s.Name.IsExported() {
		return
	}
	c.note(file+": "+s.Name.Name, s.Doc != nil || groupDocumented)
	st, ok := s.Type.(*ast.StructType)
	if !ok {
		return
	}
	for _, fld := range st.Fields.List {
		for _, n := range fld.Names {
			if n.IsExported() {
				c.note(file+": "+s.Name.Name+"."+n.Name, fld.Doc != nil || fld.Comment != nil)
			}
		}
	}
}

func receiverName(d *ast.FuncDecl) string {
	typ := d.Recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	switch x := typ.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.IndexExpr:
		return x.X.(*ast.Ident).Name
	case *ast.IndexListExpr:
		return x.X.(*ast.Ident).Name
	}
	return "?"
}

// exportedReceiver reports whether d is a function or a method of an
// exported type: methods of unexported types are not part of the API.
func exportedReceiver(d *ast.FuncDecl) bool {
	return d.Recv == nil || ast.IsExported(receiverName(d))
}

// TestExportedIdentifiersDocumented: "the root has 121 exported identifiers,
// 19 undocumented; rules exports 46 fields without a doc comment and has no
// package doc". Every exported identifier of the packages users import
// has a doc comment, and each package has a package doc.
func TestExportedIdentifiersDocumented(t *testing.T) {
	for _, dir := range []string{".", "rules", "internal/eval", "bucketing"} {
		all, undocumented, pkgDoc := exportedIdentifiers(t, dir)
		t.Logf("%s: %d exported identifiers, %d undocumented", dir, len(all), len(undocumented))
		if !pkgDoc {
			t.Errorf("%s has no package doc", dir)
		}
		for _, name := range undocumented {
			t.Errorf("%s/%s has no doc comment", dir, name)
		}
	}
}
