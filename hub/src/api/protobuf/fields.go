// Command fields prints how the Go types of Kubernetes API packages map their protobuf fields
// to JSON, for the fields where the protobuf descriptor alone does not tell. Run by generate.sh.
//
// Usage: go run fields.go DIR... (each DIR holds a package's generated.proto and Go types).
//
// Output: one line per message that has such fields, sorted:
//
//	<proto message full name> <field>...
//
// where a field token is the protobuf field name, followed by "=<json name>" when the JSON
// name differs ("=" alone: the field is inlined into its parent; "=-": never in JSON), and
// by "?" when the Go field is a non-pointer with omitempty/omitzero (a zero value on the wire
// means unset). A message whose Go type has its own MarshalJSON gets the token "!json".
package main

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

var protoPackage = regexp.MustCompile(`^package\s+([\w.]+);`)

func main() {
	lines := map[string]string{}
	for _, dir := range os.Args[1:] {
		pkg, err := readProtoPackage(filepath.Join(dir, "generated.proto"))
		if err != nil {
			fail(err)
		}
		if err := scan(dir, pkg, lines); err != nil {
			fail(err)
		}
	}
	names := make([]string, 0, len(lines))
	for n := range lines {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("%s%s\n", n, lines[n])
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func readProtoPackage(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if m := protoPackage.FindStringSubmatch(s.Text()); m != nil {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("%s: no package statement", path)
}

func scan(dir, pkg string, lines map[string]string) error {
	fset := token.NewFileSet()
	// Only the files of a default build: some types have variants behind build tags.
	keep := func(fi os.FileInfo) bool {
		ok, err := build.Default.MatchFile(dir, fi.Name())
		return err == nil && ok && !strings.HasSuffix(fi.Name(), "_test.go")
	}
	pkgs, err := parser.ParseDir(fset, dir, keep, 0)
	if err != nil {
		return err
	}
	custom := map[string]bool{}
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, decl := range f.Decls {
				if fd, ok := decl.(*ast.FuncDecl); ok && fd.Name.Name == "MarshalJSON" && fd.Recv != nil {
					custom[receiverName(fd.Recv.List[0].Type)] = true
				}
			}
		}
	}
	for _, p := range pkgs {
		for _, f := range p.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok {
					return true
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					return false
				}
				var toks []string
				if custom[ts.Name.Name] {
					toks = append(toks, "!json")
				}
				toks = append(toks, fieldTokens(st)...)
				if len(toks) > 0 {
					lines[pkg+"."+ts.Name.Name] = " " + strings.Join(toks, " ")
				}
				return false
			})
		}
	}
	return nil
}

func receiverName(e ast.Expr) string {
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

func fieldTokens(st *ast.StructType) []string {
	var toks []string
	for _, fld := range st.Fields.List {
		if fld.Tag == nil {
			continue
		}
		tag := reflect.StructTag(strings.Trim(fld.Tag.Value, "`"))
		ptag, ok := tag.Lookup("protobuf")
		if !ok || ptag == "-" {
			continue
		}
		pname := protoName(ptag)
		if pname == "" {
			// go-to-protobuf names an unnamed embedded field after its type.
			pname = lowerFirst(typeName(fld.Type))
		}
		jsonTag, hasJSON := tag.Lookup("json")
		parts := strings.Split(jsonTag, ",")
		jname := parts[0]
		tok := pname
		switch {
		case !hasJSON && len(fld.Names) == 0, hasJSON && jname == "" && hasOpt(parts, "inline"):
			tok += "="
		case jname == "-" && len(parts) == 1:
			tok += "=-"
		case jname != "" && jname != pname:
			tok += "=" + jname
		case jname == "" && len(fld.Names) > 0 && fld.Names[0].Name != pname:
			tok += "=" + fld.Names[0].Name
		}
		_, pointer := fld.Type.(*ast.StarExpr)
		if !pointer && (hasOpt(parts, "omitempty") || hasOpt(parts, "omitzero")) {
			tok += "?"
		}
		if tok != pname {
			toks = append(toks, tok)
		}
	}
	return toks
}

func typeName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return typeName(t.X)
	case *ast.SelectorExpr:
		return t.Sel.Name
	case *ast.Ident:
		return t.Name
	}
	return ""
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func protoName(tag string) string {
	for _, p := range strings.Split(tag, ",") {
		if v, ok := strings.CutPrefix(p, "name="); ok {
			return v
		}
	}
	return ""
}

func hasOpt(parts []string, opt string) bool {
	for _, p := range parts[1:] {
		if p == opt {
			return true
		}
	}
	return false
}
