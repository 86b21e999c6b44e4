// Package terraform holds the static checks of the AWS Terraform
// configuration in this directory. Terraform and an AWS account are not
// available where the tests run, so the configuration is parsed with
// github.com/hashicorp/hcl/v2 and checked for canonical formatting, resolved
// references, described and typed variables, and exactly the expected
// security-group rules; the cloud-init scripts are rendered and shellchecked.
package terraform

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// albListener is the only ingress open to the world.
var albListener = listener{Group: "alb", Ports: []int{80, 443}}

// nodeRule is an ingress rule between cluster nodes.
func nodeRule(name, group, proto string, port int, peer string) sgRule {
	return sgRule{Name: name, Group: group, Direction: "ingress", Protocol: proto, From: port, To: port, Peer: "sg:" + peer}
}

// expectedRules is every security-group rule the configuration may have.
var expectedRules = []sgRule{
	// The load balancer: its listeners from anywhere, out only to the web port.
	{Name: "alb_http", Group: "alb", Direction: "ingress", Protocol: "tcp", From: 80, To: 80, Peer: "cidr:0.0.0.0/0"},
	{Name: "alb_https", Group: "alb", Direction: "ingress", Protocol: "tcp", From: 443, To: 443, Peer: "cidr:0.0.0.0/0"},
	{Name: "alb_to_web", Group: "alb", Direction: "egress", Protocol: "tcp", From: 8080, To: 8080, Peer: "sg:nodes"},
	// The web tier's published port, from the load balancer only.
	nodeRule("web_from_alb", "nodes", "tcp", 8080, "alb"),
	// Swarm between nodes.
	nodeRule("swarm_management", "managers", "tcp", 2377, "nodes"),
	nodeRule("swarm_gossip_tcp", "nodes", "tcp", 7946, "nodes"),
	nodeRule("swarm_gossip_udp", "nodes", "udp", 7946, "nodes"),
	nodeRule("swarm_overlay", "nodes", "udp", 4789, "nodes"),
	// Consul between nodes; WAN gossip between the servers (managers).
	nodeRule("consul_server_rpc", "managers", "tcp", 8300, "nodes"),
	nodeRule("consul_serf_lan_tcp", "nodes", "tcp", 8301, "nodes"),
	nodeRule("consul_serf_lan_udp", "nodes", "udp", 8301, "nodes"),
	nodeRule("consul_serf_wan_tcp", "managers", "tcp", 8302, "managers"),
	nodeRule("consul_serf_wan_udp", "managers", "udp", 8302, "managers"),
	nodeRule("consul_http", "nodes", "tcp", 8500, "nodes"),
	nodeRule("consul_dns_tcp", "nodes", "tcp", 8600, "nodes"),
	nodeRule("consul_dns_udp", "nodes", "udp", 8600, "nodes"),
	// Heartwood's API and metrics, scraped across nodes.
	nodeRule("heartwood_api", "nodes", "tcp", 9321, "nodes"),
	// Nodes reach package mirrors, the Consul release and AWS APIs via NAT.
	{Name: "nodes_all", Group: "nodes", Direction: "egress", Protocol: "-1", Peer: "cidr:0.0.0.0/0"},
}

func loadHere(t *testing.T) *module {
	t.Helper()
	m, err := loadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTerraformFormat(t *testing.T) {
	names, err := filepath.Glob("*.tf")
	if err != nil || len(names) == 0 {
		t.Fatalf("no .tf files: %v", err)
	}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			src, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkFormat(n, src); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestTerraformReferences(t *testing.T) {
	m := loadHere(t)
	for _, p := range checkReferences(m) {
		t.Error(p)
	}
	// Sanity: the walk saw the module (a checker that sees nothing passes).
	if len(m.variables) < 10 || len(m.resources) < 30 || len(m.locals) < 10 {
		t.Errorf("module looks empty: %d variables, %d resources, %d locals", len(m.variables), len(m.resources), len(m.locals))
	}
}

func TestTerraformVariables(t *testing.T) {
	m := loadHere(t)
	for _, p := range checkVariables(m) {
		t.Error(p)
	}
	// Every variable that takes free-form input is validated.
	for _, n := range []string{
		"region", "cluster_name", "vpc_cidr", "az_count", "manager_count", "manager_instance_type",
		"cpu_workers", "gpu_workers", "ami_id", "gpu_ami_id", "root_volume_gb", "consul_version",
		"consul_zip_sha256", "node_labels", "certificate_arn", "swarm_address_pool",
	} {
		v := m.variables[n]
		if v == nil {
			t.Errorf("variable %q missing", n)
			continue
		}
		if !slices.ContainsFunc(v.Body.Blocks, func(b *hclsyntax.Block) bool { return b.Type == "validation" }) {
			t.Errorf("variable %q has no validation block", n)
		}
	}
}

func TestTerraformSecurityGroupRules(t *testing.T) {
	m := loadHere(t)
	rules, problems := collectRules(m)
	problems = append(problems, compareRules(rules, expectedRules)...)
	problems = append(problems, checkOpenCIDRs(m, rules, albListener)...)
	for _, p := range problems {
		t.Error(p)
	}
	if len(rules) != len(expectedRules) {
		t.Errorf("found %d rules, want %d", len(rules), len(expectedRules))
	}
}

func TestTerraformProviderPinned(t *testing.T) {
	m := loadHere(t)
	found := false
	for _, tb := range m.terraform {
		if _, ok := tb.Body.Attributes["required_version"]; !ok {
			t.Errorf("%s: terraform block has no required_version", at(tb.DefRange()))
		}
		for _, rp := range tb.Body.Blocks {
			if rp.Type != "required_providers" {
				continue
			}
			a, ok := rp.Body.Attributes["aws"]
			if !ok {
				continue
			}
			obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr)
			if !ok {
				t.Fatalf("%s: aws provider requirement is not an object", at(a.SrcRange))
			}
			fields := map[string]string{}
			for _, it := range obj.Items {
				if s, ok := literalString(it.ValueExpr); ok {
					fields[hcl.ExprAsKeyword(it.KeyExpr)] = s
				}
			}
			if fields["source"] != "hashicorp/aws" {
				t.Errorf("aws provider source = %q, want hashicorp/aws", fields["source"])
			}
			if v := fields["version"]; !strings.HasPrefix(v, "~>") && !strings.HasPrefix(v, "=") {
				t.Errorf("aws provider version %q is not pinned (want ~> or =)", v)
			}
			found = true
		}
	}
	if !found {
		t.Error("no required_providers entry for aws")
	}
}

func TestTerraformOutputs(t *testing.T) {
	m := loadHere(t)
	for _, n := range []string{"alb_dns_name", "manager_asg_name", "cpu_worker_asg_name", "gpu_worker_asg_name", "vpc_id", "join_token_parameters"} {
		if m.outputs[n] == nil {
			t.Errorf("output %q missing", n)
		}
	}
	for _, n := range sortedKeys(m.outputs) {
		if _, ok := m.outputs[n].Body.Attributes["description"]; !ok {
			t.Errorf("output %q has no description", n)
		}
	}
}

func TestUserDataHoldsNoSecrets(t *testing.T) {
	m := loadHere(t)
	calls, problems := templateCalls(m)
	problems = append(problems, checkUserDataSecrets(m, calls)...)
	for _, p := range problems {
		t.Error(p)
	}
	if len(calls) < 2 {
		t.Errorf("found %d templatefile calls, want the cloud-config and node.env templates", len(calls))
	}
}

// TestCheckersCatch feeds the checkers small bad configurations and expects
// each to be reported: a checker that cannot fail proves nothing.
func TestCheckersCatch(t *testing.T) {
	const sgs = `resource "aws_security_group" "alb" {}
resource "aws_security_group" "nodes" {}
`
	const goodRules = `resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  security_group_id = aws_security_group.alb.id
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "gossip" {
  security_group_id            = aws_security_group.nodes.id
  ip_protocol                  = "udp"
  from_port                    = 7946
  to_port                      = 7946
  referenced_security_group_id = aws_security_group.nodes.id
}

resource "aws_vpc_security_group_egress_rule" "out" {
  security_group_id = aws_security_group.nodes.id
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}
`
	want := []sgRule{
		{Name: "alb_http", Group: "alb", Direction: "ingress", Protocol: "tcp", From: 80, To: 80, Peer: "cidr:0.0.0.0/0"},
		nodeRule("gossip", "nodes", "udp", 7946, "nodes"),
		{Name: "out", Group: "nodes", Direction: "egress", Protocol: "-1", Peer: "cidr:0.0.0.0/0"},
	}
	const vars = `variable "region" {
  description = "Region."
  type        = string
}

locals {
  name = "x"
}

resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
  tags       = { Name = local.name, Region = var.region }
}
`
	rules := func(src string) []string {
		m, err := parseModule(map[string][]byte{"sg.tf": []byte(sgs + src)})
		if err != nil {
			return []string{err.Error()}
		}
		got, problems := collectRules(m)
		problems = append(problems, compareRules(got, want)...)
		return append(problems, checkOpenCIDRs(m, got, albListener)...)
	}
	refs := func(src string) []string {
		m, err := parseModule(map[string][]byte{"main.tf": []byte(src)})
		if err != nil {
			return []string{err.Error()}
		}
		return append(checkReferences(m), checkVariables(m)...)
	}
	format := func(src string) []string {
		if err := checkFormat("x.tf", []byte(src)); err != nil {
			return []string{err.Error()}
		}
		return nil
	}
	secrets := func(src string) []string {
		m, err := parseModule(map[string][]byte{"main.tf": []byte(src)})
		if err != nil {
			return []string{err.Error()}
		}
		calls, problems := templateCalls(m)
		return append(problems, checkUserDataSecrets(m, calls)...)
	}
	const userData = `resource "random_id" "key" {
  byte_length = 32
}

resource "aws_ssm_parameter" "key" {
  name  = "/x/key"
  type  = "SecureString"
  value = random_id.key.b64_std
}

locals {
  key = random_id.key.b64_std
}

resource "aws_launch_template" "n" {
  user_data = base64encode(templatefile("${path.module}/t.tftpl", { %s }))
}
`
	tests := []struct {
		name  string
		check func(string) []string
		src   string
		want  string // substring of a reported problem; "" = no problem
	}{
		{"good rules", rules, goodRules, ""},
		{"ssh from the world", rules, goodRules + `resource "aws_vpc_security_group_ingress_rule" "ssh" {
  security_group_id = aws_security_group.nodes.id
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = "0.0.0.0/0"
}
`, "opens 0.0.0.0/0"},
		{"unexpected rule", rules, goodRules + `resource "aws_vpc_security_group_ingress_rule" "pg" {
  security_group_id            = aws_security_group.nodes.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.nodes.id
}
`, "unexpected rule pg"},
		{"wrong port", rules, strings.Replace(goodRules, "7946", "7947", 2), "rule differs"},
		{"missing rule", rules, goodRules[:strings.Index(goodRules, `resource "aws_vpc_security_group_egress_rule"`)], "missing rule out"},
		{"world on ipv6", rules, strings.Replace(goodRules, `  referenced_security_group_id = aws_security_group.nodes.id
}`, `  cidr_ipv6 = "::/0"
}`, 1), "opens ::/0"},
		{"listener rule on a node group", rules, strings.Replace(goodRules, "aws_security_group.alb.id", "aws_security_group.nodes.id", 1), "opens 0.0.0.0/0"},
		{"computed port", rules, strings.Replace(goodRules, "from_port         = 80", "from_port         = var.port", 1), "from_port must be a literal number"},
		{"inline ingress", rules, goodRules + `resource "aws_security_group" "legacy" {
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
`, "inline ingress rule"},
		{"legacy rule resource", rules, goodRules + `resource "aws_security_group_rule" "r" {
  type              = "ingress"
  security_group_id = aws_security_group.nodes.id
  from_port         = 22
  to_port           = 22
  protocol          = "tcp"
  cidr_blocks       = ["10.0.0.0/8"]
}
`, "write rules as aws_vpc_security_group_ingress_rule"},
		{"two peers", rules, strings.Replace(goodRules, `  referenced_security_group_id = aws_security_group.nodes.id
}`, `  referenced_security_group_id = aws_security_group.nodes.id
  cidr_ipv4                    = "10.0.0.0/8"
}`, 1), "exactly one peer"},

		{"good references", refs, vars, ""},
		{"undeclared variable", refs, vars + `output "o" {
  description = "o"
  value       = var.missing
}
`, "undeclared variable var.missing"},
		{"undeclared local", refs, vars + `output "o" {
  description = "o"
  value       = local.nope
}
`, "undeclared local local.nope"},
		{"undeclared resource", refs, vars + `output "o" {
  description = "o"
  value       = aws_subnet.public.id
}
`, "undeclared resource aws_subnet.public"},
		{"undeclared data source", refs, vars + `output "o" {
  description = "o"
  value       = data.aws_ami.node.id
}
`, "undeclared data source data.aws_ami.node"},
		{"count without count", refs, vars + `resource "aws_subnet" "s" {
  vpc_id     = aws_vpc.main.id
  cidr_block = cidrsubnet("10.0.0.0/16", 8, count.index)
}
`, "count.* used in a block without count"},
		{"dynamic iterator in scope", refs, vars + `resource "aws_subnet" "s" {
  for_each = toset(["a"])
  vpc_id   = aws_vpc.main.id
  dynamic "tag" {
    for_each = [each.key]
    content {
      value = tag.value
    }
  }
  lifecycle {
    ignore_changes = [tags]
  }
}
`, ""},
		{"dynamic iterator out of scope", refs, vars + `resource "aws_subnet" "s" {
  vpc_id = aws_vpc.main.id
  name   = tag.value
}
`, "undeclared resource tag.value"},
		{"unused variable", refs, vars + `variable "spare" {
  description = "Not used."
  type        = string
}
`, `variable "spare" is declared but never used`},
		{"variable without description", refs, strings.Replace(vars, "  description = \"Region.\"\n", "", 1), `variable "region" has no description`},
		{"variable without type", refs, strings.Replace(vars, "  type        = string\n", "", 1), `variable "region" has no type`},

		{"canonical", format, "a = 1\nbb = 2\n", "not in canonical format"},
		{"aligned", format, "a  = 1\nbb = 2\n", ""},
		{"indentation", format, "resource \"x\" \"y\" {\n    a = 1\n}\n", "not in canonical format"},
		{"spacing", format, "resource \"x\" \"y\" {\n  a = [1,2]\n}\n", "not in canonical format"},
		{"syntax error", format, "resource \"x\" {\n", "x.tf"},

		{"user data with names only", secrets, strings.Replace(userData, "%s", "param = aws_ssm_parameter.key.name", 1), ""},
		{"secret value in user data", secrets, strings.Replace(userData, "%s", "key = aws_ssm_parameter.key.value", 1), "reads aws_ssm_parameter"},
		{"secret through a local", secrets, strings.Replace(userData, "%s", "key = local.key", 1), "reads random_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			problems := tc.check(tc.src)
			if tc.want == "" {
				for _, p := range problems {
					t.Errorf("unexpected problem: %s", p)
				}
				return
			}
			for _, p := range problems {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Errorf("no problem mentioning %q; got %q", tc.want, problems)
		})
	}
}
