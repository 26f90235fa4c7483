package cli

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"testing"
)

// The package's tests run in parallel (docs/development.md): each starts
// with t.Parallel(), and none calls t.Setenv, which panics in a parallel
// test (a run's AWS_* go in its settings instead).
func TestTestsRunInParallel(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*_test.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("test files: %v %v", files, err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if ok && fn.Recv == nil && len(fn.Name.Name) > 4 && fn.Name.Name[:4] == "Test" && fn.Name.Name != "TestMain" {
				if len(fn.Body.List) == 0 || !isCall(fn.Body.List[0], "Parallel") {
					t.Errorf("%s: %s does not start with t.Parallel()", fset.Position(fn.Pos()), fn.Name.Name)
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if c, ok := n.(*ast.CallExpr); ok {
				if s, ok := c.Fun.(*ast.SelectorExpr); ok && s.Sel.Name == "Setenv" {
					t.Errorf("%s: Setenv: put the variable in the run's settings", fset.Position(c.Pos()))
				}
			}
			return true
		})
	}
}

// isCall reports whether stmt is a call of a method of that name.
func isCall(stmt ast.Stmt, method string) bool {
	e, ok := stmt.(*ast.ExprStmt)
	if !ok {
		return false
	}
	c, ok := e.X.(*ast.CallExpr)
	if !ok {
		return false
	}
	s, ok := c.Fun.(*ast.SelectorExpr)
	return ok && s.Sel.Name == method
}
