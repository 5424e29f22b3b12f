package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every SQL statement is built from constant text only; values travel as bound parameters.
// This test reads the package's source and, for every call that takes a query (ExecContext,
// GetContext, sqlx.In, …), follows the query back to where it was made: string literals,
// constants, concatenations and strings.Join of those, local variables and helper functions
// that only ever hold or return such text. Anything else (a parameter, fmt.Sprintf, a value
// from the caller) fails the test with its place.

// queryArg is the position of the query among a method's arguments.
var queryArg = map[string]int{
	"Exec": 0, "Query": 0, "QueryRow": 0, "Queryx": 0, "QueryRowx": 0, "Prepare": 0, "NamedExec": 0, "NamedQuery": 0, "MustExec": 0,
	"ExecContext": 1, "QueryContext": 1, "QueryRowContext": 1, "QueryxContext": 1, "QueryRowxContext": 1, "PrepareContext": 1,
	"NamedExecContext": 1, "NamedQueryContext": 1, "MustExecContext": 1,
	"Get": 1, "Select": 1, "GetContext": 2, "SelectContext": 2,
	"In": 0, "Rebind": 0,
}

type sqlChecker struct {
	fset  *token.FileSet
	funcs map[string]*ast.FuncDecl // the package's functions and methods, by name
	all   []*ast.FuncDecl
	// visiting holds the variables being followed, so a self-reference (q = q + "…")
	// stands for the other assignments, which are checked.
	visiting map[*ast.FuncDecl]map[string]bool
	vals     map[string]ast.Expr // package-level constants and variables with a value
	lits     map[string]bool     // package-level constants (of any value)
}

func newSQLChecker(files []*ast.File, fset *token.FileSet) *sqlChecker {
	c := &sqlChecker{fset: fset, funcs: map[string]*ast.FuncDecl{}, vals: map[string]ast.Expr{}, lits: map[string]bool{},
		visiting: map[*ast.FuncDecl]map[string]bool{}}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Body != nil {
					c.funcs[d.Name.Name] = d
					c.all = append(c.all, d)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					vs, ok := spec.(*ast.ValueSpec)
					if !ok {
						continue
					}
					for i, name := range vs.Names {
						if i < len(vs.Values) {
							c.vals[name.Name] = vs.Values[i]
						} else if d.Tok == token.CONST {
							c.lits[name.Name] = true
						}
					}
				}
			}
		}
	}
	return c
}

// problems lists the calls in files whose query is not provably constant text.
func (c *sqlChecker) problems(files []*ast.File) []string {
	var out []string
	for _, f := range files {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				i, ok := queryArg[sel.Sel.Name]
				if pkg, isPkg := sel.X.(*ast.Ident); isPkg && pkg.Name == "sqlx" && sel.Sel.Name != "In" && sel.Sel.Name != "Rebind" {
					i++ // sqlx.GetContext(ctx, queryer, dest, query, …)
				}
				if !ok || i >= len(call.Args) {
					return true
				}
				if !c.safe(call.Args[i], fn, 0) {
					out = append(out, c.fset.Position(call.Pos()).String()+": "+sel.Sel.Name+" with a query that is not constant text")
				}
				return true
			})
		}
	}
	return out
}

func (c *sqlChecker) safe(e ast.Expr, fn *ast.FuncDecl, depth int) bool {
	if depth > 12 {
		return false
	}
	switch e := e.(type) {
	case *ast.BasicLit:
		return e.Kind == token.STRING
	case *ast.ParenExpr:
		return c.safe(e.X, fn, depth+1)
	case *ast.BinaryExpr:
		return e.Op == token.ADD && c.safe(e.X, fn, depth+1) && c.safe(e.Y, fn, depth+1)
	case *ast.Ident:
		return c.safeIdent(e.Name, fn, depth+1)
	case *ast.CallExpr:
		switch fun := e.Fun.(type) {
		case *ast.SelectorExpr:
			pkg, _ := fun.X.(*ast.Ident)
			switch {
			case pkg != nil && pkg.Name == "strings" && fun.Sel.Name == "Join" && len(e.Args) == 2:
				return c.safeSlice(e.Args[0], fn, depth+1) && c.safe(e.Args[1], fn, depth+1)
			case pkg != nil && pkg.Name == "strings" && fun.Sel.Name == "Repeat" && len(e.Args) == 2:
				return c.safe(e.Args[0], fn, depth+1) // placeholders: strings.Repeat("?,", n)
			case pkg != nil && pkg.Name == "strings" && (fun.Sel.Name == "TrimSuffix" || fun.Sel.Name == "TrimPrefix"):
				return c.safe(e.Args[0], fn, depth+1) && c.safe(e.Args[1], fn, depth+1)
			case (fun.Sel.Name == "In" || fun.Sel.Name == "Rebind") && len(e.Args) > 0:
				return c.safe(e.Args[0], fn, depth+1)
			}
			if callee, ok := c.funcs[fun.Sel.Name]; ok {
				return c.safeReturns(callee, 0, depth+1)
			}
		case *ast.Ident:
			if callee, ok := c.funcs[fun.Name]; ok {
				return c.safeReturns(callee, 0, depth+1)
			}
		}
	}
	return false
}

// safeIdent: a package-level constant or variable of constant text, or a local variable
// every assignment of which is constant text.
func (c *sqlChecker) safeIdent(name string, fn *ast.FuncDecl, depth int) bool {
	if fn != nil {
		if c.visiting[fn][name] {
			return true
		}
		if c.visiting[fn] == nil {
			c.visiting[fn] = map[string]bool{}
		}
		c.visiting[fn][name] = true
		defer delete(c.visiting[fn], name)
		if p := paramIndex(fn, name); p >= 0 {
			return c.safeArguments(fn, p, depth)
		}
	}
	assigned, ok := c.localAssignments(name, fn)
	if !ok {
		return false // bound some way this checker does not follow
	}
	if assigned == nil {
		if c.lits[name] {
			return true
		}
		v, ok := c.vals[name]
		return ok && c.safe(v, nil, depth)
	}
	for _, a := range assigned {
		if !a(depth) {
			return false
		}
	}
	return true
}

// localAssignments returns a check per place fn gives name a value (nil if fn never
// declares name); ok is false if name is one of fn's parameters or a range variable.
func (c *sqlChecker) localAssignments(name string, fn *ast.FuncDecl) (checks []func(int) bool, ok bool) {
	if fn == nil {
		return nil, true
	}
	if paramIndex(fn, name) >= 0 {
		return nil, false
	}
	ok = true
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch s := n.(type) {
		case *ast.AssignStmt:
			for i, lhs := range s.Lhs {
				id, isIdent := lhs.(*ast.Ident)
				if !isIdent || id.Name != name {
					continue
				}
				switch {
				case len(s.Lhs) == len(s.Rhs):
					rhs := s.Rhs[i]
					checks = append(checks, func(d int) bool { return c.safe(rhs, fn, d) })
				case len(s.Rhs) == 1:
					// query, args, err := sqlx.In(…) or where, args := f.where()
					call, isCall := s.Rhs[0].(*ast.CallExpr)
					pos := i
					checks = append(checks, func(d int) bool {
						if !isCall {
							return false
						}
						if pos == 0 && c.safe(call, fn, d) {
							return true
						}
						name := ""
						switch fun := call.Fun.(type) {
						case *ast.Ident:
							name = fun.Name
						case *ast.SelectorExpr:
							name = fun.Sel.Name
						}
						if callee, found := c.funcs[name]; found {
							return c.safeReturns(callee, pos, d)
						}
						return false
					})
				}
			}
		case *ast.ValueSpec:
			for i, id := range s.Names {
				if id.Name == name {
					if i < len(s.Values) {
						v := s.Values[i]
						checks = append(checks, func(d int) bool { return c.safe(v, fn, d) })
					} else {
						checks = append(checks, func(int) bool { return true }) // var q string: ""
					}
				}
			}
		case *ast.RangeStmt:
			for _, v := range []ast.Expr{s.Key, s.Value} {
				if id, isIdent := v.(*ast.Ident); isIdent && id.Name == name {
					ok = false
				}
			}
		}
		return true
	})
	return checks, ok
}

func paramIndex(fn *ast.FuncDecl, name string) int {
	i := 0
	for _, field := range fn.Type.Params.List {
		for _, n := range field.Names {
			if n.Name == name {
				return i
			}
			i++
		}
		if len(field.Names) == 0 {
			i++
		}
	}
	return -1
}

// safeArguments: fn is called somewhere, and every caller passes constant text as its
// argument p (a helper that takes a condition, say).
func (c *sqlChecker) safeArguments(fn *ast.FuncDecl, p, depth int) bool {
	good, calls := true, 0
	for _, caller := range c.all {
		ast.Inspect(caller.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			name := ""
			switch fun := call.Fun.(type) {
			case *ast.Ident:
				name = fun.Name
			case *ast.SelectorExpr:
				name = fun.Sel.Name
			}
			if name != fn.Name.Name {
				return true
			}
			calls++
			if p >= len(call.Args) || !c.safe(call.Args[p], caller, depth+1) {
				good = false
			}
			return true
		})
	}
	return good && calls > 0
}

// safeSlice: a []string whose every element, however it was built, is constant text.
func (c *sqlChecker) safeSlice(e ast.Expr, fn *ast.FuncDecl, depth int) bool {
	if depth > 12 {
		return false
	}
	switch e := e.(type) {
	case *ast.CompositeLit:
		for _, el := range e.Elts {
			if !c.safe(el, fn, depth+1) {
				return false
			}
		}
		return true
	case *ast.CallExpr:
		if fun, ok := e.Fun.(*ast.Ident); ok && fun.Name == "make" {
			return true
		}
		if fun, ok := e.Fun.(*ast.Ident); ok && fun.Name == "append" && len(e.Args) > 0 {
			for i, a := range e.Args[1:] {
				if e.Ellipsis.IsValid() && i == len(e.Args)-2 {
					if !c.safeSlice(a, fn, depth+1) {
						return false
					}
				} else if !c.safe(a, fn, depth+1) {
					return false
				}
			}
			// The first argument is the slice itself, checked by its assignments.
			return true
		}
	case *ast.Ident:
		checks, ok := c.localAssignments(e.Name, fn)
		if !ok || checks == nil {
			return false
		}
		// Re-check each assignment as a slice.
		good := true
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			switch s := n.(type) {
			case *ast.AssignStmt:
				for i, lhs := range s.Lhs {
					if id, isIdent := lhs.(*ast.Ident); isIdent && id.Name == e.Name {
						if len(s.Lhs) != len(s.Rhs) || !c.safeSlice(s.Rhs[i], fn, depth+1) {
							good = false
						}
					}
				}
			case *ast.ValueSpec:
				for i, id := range s.Names {
					if id.Name == e.Name && i < len(s.Values) && !c.safeSlice(s.Values[i], fn, depth+1) {
						good = false
					}
				}
			}
			return true
		})
		return good
	}
	return false
}

// safeReturns: every return statement of fn gives constant text at position i.
func (c *sqlChecker) safeReturns(fn *ast.FuncDecl, i, depth int) bool {
	good, any := true, false
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if _, isLit := n.(*ast.FuncLit); isLit {
			return false
		}
		if r, ok := n.(*ast.ReturnStmt); ok {
			if i >= len(r.Results) {
				good = false
				return true
			}
			any = true
			if !c.safe(r.Results[i], fn, depth) {
				good = false
			}
		}
		return true
	})
	return good && any
}

func parseSources(t *testing.T, fset *token.FileSet, sources map[string]string) []*ast.File {
	t.Helper()
	var files []*ast.File
	for name, src := range sources {
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

func TestSQLIsBuiltOnlyFromConstantText(t *testing.T) {
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sources[p] = string(b)
	}
	fset := token.NewFileSet()
	files := parseSources(t, fset, sources)
	for _, p := range newSQLChecker(files, fset).problems(files) {
		t.Error(p)
	}
}

// The checker itself catches what it is for.
func TestSQLCheckerCatchesValuesInQueries(t *testing.T) {
	const src = `package store
import ("fmt"; "strings")
const cols = "id, name"
func ok(db DB, id string) {
	db.ExecContext(ctx, "DELETE FROM t WHERE id = ?", id)
	q := "SELECT " + cols + " FROM t"
	var where []string
	where = append(where, "a = ?")
	q += " WHERE " + strings.Join(where, " AND ")
	db.GetContext(ctx, &x, q, id)
}
func bad1(db DB, name string) { db.ExecContext(ctx, fmt.Sprintf("DELETE FROM t WHERE name = '%s'", name)) }
func bad2(db DB, name string) { db.GetContext(ctx, &x, "SELECT * FROM t WHERE name = '"+name+"'") }
func bad3(db DB, col string) {
	var where []string
	where = append(where, col+" = ?")
	db.QueryContext(ctx, "SELECT 1 FROM t WHERE "+strings.Join(where, " AND "))
}
func bad4(db DB, names []string) {
	for _, n := range names { db.Exec("DROP TABLE " + n) }
}
`
	fset := token.NewFileSet()
	files := parseSources(t, fset, map[string]string{"x.go": src})
	problems := newSQLChecker(files, fset).problems(files)
	if len(problems) != 4 {
		t.Fatalf("want the 4 bad calls reported, got %d: %v", len(problems), problems)
	}
	for i, p := range problems {
		if !strings.Contains(p, []string{"x.go:12", "x.go:13", "x.go:17", "x.go:20"}[i]) {
			t.Errorf("problem %d at the wrong place: %s", i, p)
		}
	}
}
