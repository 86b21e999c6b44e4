package terraform

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// module is a parsed Terraform configuration directory: its files and the
// names it declares.
type module struct {
	files     map[string]*hclsyntax.Body
	src       map[string][]byte
	variables map[string]*hclsyntax.Block
	locals    map[string]*hclsyntax.Attribute
	resources map[string]*hclsyntax.Block // "type.name"
	data      map[string]*hclsyntax.Block // "type.name"
	providers map[string]*hclsyntax.Block
	terraform []*hclsyntax.Block
	outputs   map[string]*hclsyntax.Block
}

// loadDir reads every .tf file of dir.
func loadDir(dir string) (*module, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no .tf files in %s", dir)
	}
	files := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		files[filepath.Base(n)] = b
	}
	return parseModule(files)
}

// parseModule parses the given files (name → source) as one module and
// indexes its declarations. Duplicate declarations are errors, as in
// Terraform.
func parseModule(files map[string][]byte) (*module, error) {
	m := &module{
		files:     map[string]*hclsyntax.Body{},
		src:       files,
		variables: map[string]*hclsyntax.Block{},
		locals:    map[string]*hclsyntax.Attribute{},
		resources: map[string]*hclsyntax.Block{},
		data:      map[string]*hclsyntax.Block{},
		providers: map[string]*hclsyntax.Block{},
		outputs:   map[string]*hclsyntax.Block{},
	}
	var problems []string
	for _, name := range sortedKeys(files) {
		f, diags := hclsyntax.ParseConfig(files[name], name, hcl.InitialPos)
		if diags.HasErrors() {
			return nil, fmt.Errorf("parse %s: %s", name, diags.Error())
		}
		body := f.Body.(*hclsyntax.Body)
		m.files[name] = body
		if len(body.Attributes) > 0 {
			for _, a := range body.Attributes {
				problems = append(problems, fmt.Sprintf("%s: top-level attribute %q", name, a.Name))
			}
		}
		for _, b := range body.Blocks {
			add := func(into map[string]*hclsyntax.Block, key string) {
				if _, dup := into[key]; dup {
					problems = append(problems, fmt.Sprintf("%s: %s %q declared twice", at(b.TypeRange), b.Type, key))
				}
				into[key] = b
			}
			switch b.Type {
			case "variable":
				add(m.variables, b.Labels[0])
			case "output":
				add(m.outputs, b.Labels[0])
			case "resource":
				add(m.resources, b.Labels[0]+"."+b.Labels[1])
			case "data":
				add(m.data, b.Labels[0]+"."+b.Labels[1])
			case "provider":
				add(m.providers, b.Labels[0]+aliasOf(b))
			case "terraform":
				m.terraform = append(m.terraform, b)
			case "locals":
				for n, a := range b.Body.Attributes {
					if _, dup := m.locals[n]; dup {
						problems = append(problems, fmt.Sprintf("%s: local %q declared twice", at(a.NameRange), n))
					}
					m.locals[n] = a
				}
			case "module", "moved", "import", "removed", "check":
				problems = append(problems, fmt.Sprintf("%s: %s blocks are not used by this configuration and not checked", at(b.TypeRange), b.Type))
			default:
				problems = append(problems, fmt.Sprintf("%s: unknown top-level block %q", at(b.TypeRange), b.Type))
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return m, nil
}

func aliasOf(b *hclsyntax.Block) string {
	if a, ok := b.Body.Attributes["alias"]; ok {
		if s, ok := literalString(a.Expr); ok {
			return "." + s
		}
	}
	return ""
}

func at(r hcl.Range) string { return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkFormat reports whether src is byte-equal to its canonical
// formatting (hclwrite.Format, what `terraform fmt` applies).
func checkFormat(name string, src []byte) error {
	if _, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos); diags.HasErrors() {
		return fmt.Errorf("%s: %s", name, diags.Error())
	}
	want := hclwrite.Format(src)
	if bytes.Equal(src, want) {
		return nil
	}
	gl, wl := strings.Split(string(src), "\n"), strings.Split(string(want), "\n")
	for i := range min(len(gl), len(wl)) {
		if gl[i] != wl[i] {
			return fmt.Errorf("%s:%d is not in canonical format:\n  have %q\n  want %q", name, i+1, gl[i], wl[i])
		}
	}
	return fmt.Errorf("%s is not in canonical format (line count %d, want %d)", name, len(gl), len(wl))
}

// scope is what a reference may name at one point of the configuration.
type scope struct {
	count, each bool            // inside a block with count / for_each
	iterators   map[string]bool // dynamic block iterators
}

func (s scope) with(iter string) scope {
	n := scope{count: s.count, each: s.each, iterators: map[string]bool{iter: true}}
	for k := range s.iterators {
		n.iterators[k] = true
	}
	return n
}

// checkReferences checks that every reference in the module names a
// declared variable, local, resource or data source (and that count.* and
// each.* appear only where count or for_each is set), and that every
// declared variable and local is used.
func checkReferences(m *module) []string {
	var problems []string
	usedVars, usedLocals := map[string]bool{}, map[string]bool{}
	resourceTypes := map[string]bool{}
	for k := range m.resources {
		resourceTypes[strings.SplitN(k, ".", 2)[0]] = true
	}

	checkTraversal := func(t hcl.Traversal, sc scope) {
		root := t.RootName()
		attr := func(i int) (string, bool) {
			if len(t) <= i {
				return "", false
			}
			switch s := t[i].(type) {
			case hcl.TraverseAttr:
				return s.Name, true
			}
			return "", false
		}
		where := at(t.SourceRange())
		switch {
		case root == "var":
			n, ok := attr(1)
			if !ok || m.variables[n] == nil {
				problems = append(problems, fmt.Sprintf("%s: reference to undeclared variable var.%s", where, n))
			}
			usedVars[n] = true
		case root == "local":
			n, ok := attr(1)
			if !ok || m.locals[n] == nil {
				problems = append(problems, fmt.Sprintf("%s: reference to undeclared local local.%s", where, n))
			}
			usedLocals[n] = true
		case root == "data":
			typ, ok1 := attr(1)
			name, ok2 := attr(2)
			if !ok1 || !ok2 || m.data[typ+"."+name] == nil {
				problems = append(problems, fmt.Sprintf("%s: reference to undeclared data source data.%s.%s", where, typ, name))
			}
		case root == "count":
			if !sc.count {
				problems = append(problems, fmt.Sprintf("%s: count.* used in a block without count", where))
			}
		case root == "each":
			if !sc.each {
				problems = append(problems, fmt.Sprintf("%s: each.* used in a block without for_each", where))
			}
		case root == "path", root == "terraform", root == "self":
		case sc.iterators[root]:
		default:
			name, ok := attr(1)
			if !ok || m.resources[root+"."+name] == nil {
				problems = append(problems, fmt.Sprintf("%s: reference to undeclared resource %s.%s", where, root, name))
			}
		}
	}
	checkExpr := func(e hclsyntax.Expression, sc scope) {
		for _, t := range hclsyntax.Variables(e) {
			checkTraversal(t, sc)
		}
	}
	var walkBody func(b *hclsyntax.Body, sc scope, skip map[string]bool)
	walkBody = func(b *hclsyntax.Body, sc scope, skip map[string]bool) {
		for _, name := range sortedKeys(b.Attributes) {
			if !skip[name] {
				checkExpr(b.Attributes[name].Expr, sc)
			}
		}
		for _, blk := range b.Blocks {
			switch blk.Type {
			case "lifecycle":
				// ignore_changes names attributes of the resource itself.
				walkBody(blk.Body, sc, map[string]bool{"ignore_changes": true})
			case "dynamic":
				iter := blk.Labels[0]
				if a, ok := blk.Body.Attributes["iterator"]; ok {
					if kw := hcl.ExprAsKeyword(a.Expr); kw != "" {
						iter = kw
					}
				}
				walkBody(blk.Body, sc.with(iter), map[string]bool{"iterator": true})
			default:
				walkBody(blk.Body, sc, nil)
			}
		}
	}

	for _, name := range sortedKeys(m.files) {
		for _, blk := range m.files[name].Blocks {
			switch blk.Type {
			case "resource", "data":
				_, hasCount := blk.Body.Attributes["count"]
				_, hasEach := blk.Body.Attributes["for_each"]
				walkBody(blk.Body, scope{count: hasCount, each: hasEach}, nil)
			case "variable":
				// type constraints are not expressions to resolve.
				walkBody(blk.Body, scope{}, map[string]bool{"type": true})
			case "terraform":
				// version constraints and provider sources only.
			default:
				walkBody(blk.Body, scope{}, nil)
			}
		}
	}
	for _, n := range sortedKeys(m.variables) {
		if !usedVars[n] {
			problems = append(problems, fmt.Sprintf("%s: variable %q is declared but never used", at(m.variables[n].DefRange()), n))
		}
	}
	for _, n := range sortedKeys(m.locals) {
		if !usedLocals[n] {
			problems = append(problems, fmt.Sprintf("%s: local %q is declared but never used", at(m.locals[n].NameRange), n))
		}
	}
	return problems
}

// checkVariables requires a description and a type on every variable.
func checkVariables(m *module) []string {
	var problems []string
	for _, n := range sortedKeys(m.variables) {
		b := m.variables[n]
		for _, attr := range []string{"description", "type"} {
			a, ok := b.Body.Attributes[attr]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: variable %q has no %s", at(b.DefRange()), n, attr))
				continue
			}
			if attr == "description" {
				if s, ok := literalString(a.Expr); !ok || strings.TrimSpace(s) == "" {
					problems = append(problems, fmt.Sprintf("%s: variable %q has an empty or computed description", at(a.SrcRange), n))
				}
			}
		}
		for _, v := range b.Body.Blocks {
			if v.Type != "validation" {
				continue
			}
			for _, attr := range []string{"condition", "error_message"} {
				if _, ok := v.Body.Attributes[attr]; !ok {
					problems = append(problems, fmt.Sprintf("%s: validation of %q has no %s", at(v.DefRange()), n, attr))
				}
			}
		}
	}
	return problems
}

// literalString returns the value of a string literal expression (a quoted
// string without interpolation).
func literalString(e hclsyntax.Expression) (string, bool) {
	switch e := e.(type) {
	case *hclsyntax.TemplateExpr:
		if !e.IsStringLiteral() {
			return "", false
		}
		v, diags := e.Value(nil)
		if diags.HasErrors() || v.Type() != cty.String {
			return "", false
		}
		return v.AsString(), true
	case *hclsyntax.LiteralValueExpr:
		if e.Val.Type() == cty.String {
			return e.Val.AsString(), true
		}
	}
	return "", false
}

// literalInt returns the value of a whole-number literal expression.
func literalInt(e hclsyntax.Expression) (int, bool) {
	lit, ok := e.(*hclsyntax.LiteralValueExpr)
	if !ok || lit.Val.Type() != cty.Number {
		return 0, false
	}
	i, acc := lit.Val.AsBigFloat().Int64()
	if acc != 0 {
		return 0, false
	}
	return int(i), true
}

// sgRef returns X for an expression aws_security_group.X.id.
func sgRef(e hclsyntax.Expression) (string, bool) {
	st, ok := e.(*hclsyntax.ScopeTraversalExpr)
	if !ok || len(st.Traversal) != 3 || st.Traversal.RootName() != "aws_security_group" {
		return "", false
	}
	name, ok1 := st.Traversal[1].(hcl.TraverseAttr)
	id, ok2 := st.Traversal[2].(hcl.TraverseAttr)
	if !ok1 || !ok2 || id.Name != "id" {
		return "", false
	}
	return name.Name, true
}

// sgRule is one security-group rule in a form that can be compared: the
// group it belongs to, direction, protocol, port range and the peer (another
// group "sg:<name>" or an address range "cidr:<block>").
type sgRule struct {
	Name      string // resource name
	Group     string
	Direction string // ingress or egress
	Protocol  string // tcp, udp or -1 (all)
	From, To  int    // 0 for protocol -1
	Peer      string
}

func (r sgRule) String() string {
	ports := fmt.Sprintf("%d-%d", r.From, r.To)
	if r.From == r.To {
		ports = fmt.Sprint(r.From)
	}
	if r.Protocol == "-1" {
		ports = "all"
	}
	return fmt.Sprintf("%s: %s %s %s/%s peer %s", r.Name, r.Group, r.Direction, ports, r.Protocol, r.Peer)
}

var ruleTypes = map[string]string{
	"aws_vpc_security_group_ingress_rule": "ingress",
	"aws_vpc_security_group_egress_rule":  "egress",
}

// collectRules reads every security-group rule of the module. Rules must be
// aws_vpc_security_group_{ingress,egress}_rule resources with literal
// protocols, ports and peers, so they can be checked without evaluating the
// configuration; any other way of writing a rule is reported.
func collectRules(m *module) ([]sgRule, []string) {
	var rules []sgRule
	var problems []string
	for _, key := range sortedKeys(m.resources) {
		b := m.resources[key]
		typ, name := b.Labels[0], b.Labels[1]
		where := at(b.DefRange())
		switch typ {
		case "aws_security_group_rule":
			problems = append(problems, fmt.Sprintf("%s: %s: write rules as aws_vpc_security_group_ingress_rule / _egress_rule", where, key))
			continue
		case "aws_security_group", "aws_default_security_group":
			for _, blk := range b.Body.Blocks {
				if blk.Type == "ingress" || blk.Type == "egress" {
					problems = append(problems, fmt.Sprintf("%s: %s has an inline %s rule; write it as a separate rule resource", at(blk.DefRange()), key, blk.Type))
				}
			}
			for _, a := range []string{"ingress", "egress"} {
				if attr, ok := b.Body.Attributes[a]; ok {
					problems = append(problems, fmt.Sprintf("%s: %s sets %s inline; write rules as separate resources", at(attr.SrcRange), key, a))
				}
			}
			continue
		case "aws_network_acl", "aws_network_acl_rule", "aws_default_network_acl":
			problems = append(problems, fmt.Sprintf("%s: %s: network ACLs are not expected in this configuration", where, key))
			continue
		}
		dir, ok := ruleTypes[typ]
		if !ok {
			continue
		}
		r := sgRule{Name: name, Direction: dir}
		attrs := b.Body.Attributes
		bad := func(format string, args ...any) {
			problems = append(problems, fmt.Sprintf("%s: %s: %s", where, key, fmt.Sprintf(format, args...)))
		}
		if a, ok := attrs["security_group_id"]; !ok {
			bad("no security_group_id")
		} else if g, ok := sgRef(a.Expr); !ok {
			bad("security_group_id must be aws_security_group.<name>.id")
		} else {
			r.Group = g
		}
		if a, ok := attrs["ip_protocol"]; !ok {
			bad("no ip_protocol")
		} else if p, ok := literalString(a.Expr); !ok {
			bad("ip_protocol must be a literal")
		} else {
			r.Protocol = p
		}
		for _, p := range []struct {
			attr string
			into *int
		}{{"from_port", &r.From}, {"to_port", &r.To}} {
			a, ok := attrs[p.attr]
			switch {
			case !ok && r.Protocol == "-1":
			case !ok:
				bad("no %s", p.attr)
			case r.Protocol == "-1":
				bad("%s set with protocol -1 (all ports)", p.attr)
			default:
				if v, ok := literalInt(a.Expr); ok {
					*p.into = v
				} else {
					bad("%s must be a literal number", p.attr)
				}
			}
		}
		peers := 0
		for _, pa := range []string{"cidr_ipv4", "cidr_ipv6", "referenced_security_group_id", "prefix_list_id"} {
			a, ok := attrs[pa]
			if !ok {
				continue
			}
			peers++
			switch pa {
			case "referenced_security_group_id":
				if g, ok := sgRef(a.Expr); ok {
					r.Peer = "sg:" + g
				} else {
					bad("referenced_security_group_id must be aws_security_group.<name>.id")
				}
			case "prefix_list_id":
				bad("prefix-list peers are not expected")
			default:
				if c, ok := literalString(a.Expr); ok {
					r.Peer = "cidr:" + c
				} else {
					bad("%s must be a literal", pa)
				}
			}
		}
		if peers != 1 {
			bad("needs exactly one peer (cidr_ipv4, cidr_ipv6 or referenced_security_group_id), has %d", peers)
		}
		rules = append(rules, r)
	}
	return rules, problems
}

// openCIDRs are the peers meaning "anywhere".
var openCIDRs = []string{"0.0.0.0/0", "::/0"}

// firewallTypes are the resource types that can admit traffic.
var firewallTypes = []string{
	"aws_security_group", "aws_default_security_group", "aws_security_group_rule",
	"aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule",
	"aws_network_acl", "aws_network_acl_rule", "aws_default_network_acl",
}

// listener describes the only ingress that may come from anywhere: the load
// balancer's security group on its listener ports (TCP).
type listener struct {
	Group string
	Ports []int
}

// checkOpenCIDRs finds 0.0.0.0/0 and ::/0 anywhere in a firewall resource
// and allows them only in egress rules and in ingress rules of the load
// balancer's group on its listener ports.
func checkOpenCIDRs(m *module, rules []sgRule, lb listener) []string {
	byName := map[string]sgRule{}
	for _, r := range rules {
		byName[r.Name] = r
	}
	var problems []string
	for _, key := range sortedKeys(m.resources) {
		b := m.resources[key]
		typ, name := b.Labels[0], b.Labels[1]
		if !slices.Contains(firewallTypes, typ) {
			continue
		}
		hclsyntax.VisitAll(b.Body, func(n hclsyntax.Node) hcl.Diagnostics {
			lit, ok := n.(*hclsyntax.LiteralValueExpr)
			if !ok || lit.Val.Type() != cty.String {
				return nil
			}
			for _, c := range openCIDRs {
				if !strings.Contains(lit.Val.AsString(), c) {
					continue
				}
				r, isRule := byName[name]
				allowed := isRule && ruleTypes[typ] == r.Direction &&
					(r.Direction == "egress" ||
						(r.Group == lb.Group && r.Protocol == "tcp" && r.From == r.To && slices.Contains(lb.Ports, r.From)))
				if !allowed {
					problems = append(problems, fmt.Sprintf("%s: %s opens %s; only the load balancer's listener ingress and egress may", at(lit.SrcRange), key, c))
				}
			}
			return nil
		})
	}
	return problems
}

// compareRules checks that the module's rules are exactly the expected ones.
func compareRules(got, want []sgRule) []string {
	var problems []string
	wantBy := map[string]sgRule{}
	for _, w := range want {
		wantBy[w.Name] = w
	}
	seen := map[string]bool{}
	for _, g := range got {
		seen[g.Name] = true
		w, ok := wantBy[g.Name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("unexpected rule %s", g))
		case w != g:
			problems = append(problems, fmt.Sprintf("rule differs:\n  have %s\n  want %s", g, w))
		}
	}
	for _, w := range want {
		if !seen[w.Name] {
			problems = append(problems, fmt.Sprintf("missing rule %s", w))
		}
	}
	return problems
}

// templateCall is one templatefile("${path.module}/<Path>", { keys }) call.
type templateCall struct {
	Path string
	Keys []string
	Args hclsyntax.Expression
	At   string
}

// templateCalls finds every templatefile call with a literal path under
// ${path.module} and an object literal of variables.
func templateCalls(m *module) ([]templateCall, []string) {
	var calls []templateCall
	var problems []string
	for _, name := range sortedKeys(m.files) {
		hclsyntax.VisitAll(m.files[name], func(n hclsyntax.Node) hcl.Diagnostics {
			fc, ok := n.(*hclsyntax.FunctionCallExpr)
			if !ok || fc.Name != "templatefile" {
				return nil
			}
			where := at(fc.Range())
			if len(fc.Args) != 2 {
				problems = append(problems, where+": templatefile needs two arguments")
				return nil
			}
			tmpl, ok := fc.Args[0].(*hclsyntax.TemplateExpr)
			if !ok || len(tmpl.Parts) != 2 {
				problems = append(problems, where+`: templatefile path must be "${path.module}/<file>"`)
				return nil
			}
			st, ok1 := tmpl.Parts[0].(*hclsyntax.ScopeTraversalExpr)
			rest, ok2 := literalString(&hclsyntax.TemplateExpr{Parts: tmpl.Parts[1:]})
			if !ok1 || st.Traversal.RootName() != "path" || !ok2 || !strings.HasPrefix(rest, "/") {
				problems = append(problems, where+`: templatefile path must be "${path.module}/<file>"`)
				return nil
			}
			obj, ok := fc.Args[1].(*hclsyntax.ObjectConsExpr)
			if !ok {
				problems = append(problems, where+": templatefile variables must be an object literal")
				return nil
			}
			c := templateCall{Path: strings.TrimPrefix(rest, "/"), Args: fc.Args[1], At: where}
			for _, it := range obj.Items {
				k := hcl.ExprAsKeyword(it.KeyExpr)
				if k == "" {
					problems = append(problems, where+": templatefile variable names must be identifiers")
					continue
				}
				c.Keys = append(c.Keys, k)
			}
			sort.Strings(c.Keys)
			calls = append(calls, c)
			return nil
		})
	}
	return calls, problems
}

// secretSources are references whose values are secrets and so must never
// flow into user data.
var secretSources = []string{"random_id", "random_password", "aws_ssm_parameter", "data.aws_ssm_parameter", "aws_secretsmanager_secret_version"}

// checkUserDataSecrets reports templatefile arguments that read a secret
// value, directly or through locals (it would end up in user data, in clear,
// visible to anyone who can describe the instance). Names and ARNs of
// parameters are fine; values are not.
func checkUserDataSecrets(m *module, calls []templateCall) []string {
	var problems []string
	seenLocal := map[string]bool{}
	var check func(e hclsyntax.Expression, via string)
	check = func(e hclsyntax.Expression, via string) {
		for _, t := range hclsyntax.Variables(e) {
			ref := t.RootName()
			if len(t) > 1 {
				if a, ok := t[1].(hcl.TraverseAttr); ok {
					switch ref {
					case "data":
						ref = "data." + a.Name
					case "local":
						if l := m.locals[a.Name]; l != nil && !seenLocal[a.Name] {
							seenLocal[a.Name] = true
							check(l.Expr, via+" → local."+a.Name)
						}
						continue
					}
				}
			}
			if !slices.Contains(secretSources, ref) {
				continue
			}
			last, _ := t[len(t)-1].(hcl.TraverseAttr)
			if strings.HasSuffix(ref, "aws_ssm_parameter") && (last.Name == "name" || last.Name == "arn") {
				continue
			}
			problems = append(problems, fmt.Sprintf("%s: user data template (%s) reads %s, a secret: fetch it on the node instead", at(t.SourceRange()), via, ref))
		}
	}
	for _, c := range calls {
		clear(seenLocal)
		check(c.Args, c.Path)
	}
	return problems
}
