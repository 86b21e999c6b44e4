package terraform

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"
)

// userDataLimit is EC2's limit on user data before base64 encoding.
const userDataLimit = 16 << 10

// shellcheckBin finds shellcheck or fails the test with what to do.
func shellcheckBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Fatal("shellcheck is not installed: `stack/dev/services.sh up` installs it (or apt-get install shellcheck)")
	}
	return p
}

// shellcheck runs shellcheck on files and returns its findings.
func shellcheck(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(shellcheckBin(t), append([]string{"--format=gcc", "--external-sources", "--source-path=SCRIPTDIR"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("shellcheck %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return ""
}

// render renders a template file the way Terraform's templatefile does:
// every variable it uses must be supplied, and none may be left over.
func render(t *testing.T, path string, vars map[string]cty.Value) string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	expr, diags := hclsyntax.ParseTemplate(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parse %s: %s", path, diags.Error())
	}
	v, diags := expr.Value(&hcl.EvalContext{Variables: vars})
	if diags.HasErrors() {
		t.Fatalf("render %s: %s", path, diags.Error())
	}
	return v.AsString()
}

// templateVars lists the root names a template reads.
func templateVars(t *testing.T, path string) []string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	expr, diags := hclsyntax.ParseTemplate(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parse %s: %s", path, diags.Error())
	}
	set := map[string]bool{}
	for _, tr := range expr.Variables() {
		set[tr.RootName()] = true
	}
	return sortedKeys(set)
}

func base64gzip(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := io.WriteString(zw, s); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

func gunzipBase64(s string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", err
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	out, err := io.ReadAll(zr)
	return string(out), err
}

// nodeEnvVars are test values for templates/node.env.tftpl, per node group.
func nodeEnvVars(group string) map[string]cty.Value {
	role, gpu := "worker", group == "gpu"
	if group == "manager" {
		role = "manager"
	}
	return map[string]cty.Value{
		"cluster":             cty.StringVal("heartwood"),
		"group":               cty.StringVal(group),
		"swarm_role":          cty.StringVal(role),
		"gpu":                 cty.BoolVal(gpu),
		"region":              cty.StringVal("eu-west-1"),
		"kms_key_arn":         cty.StringVal("arn:aws:kms:eu-west-1:123456789012:key/0f0e0d0c-0b0a-0908-0706-050403020100"),
		"manager_token_param": cty.StringVal("/heartwood/heartwood/swarm/manager-token"),
		"worker_token_param":  cty.StringVal("/heartwood/heartwood/swarm/worker-token"),
		"gossip_key_param":    cty.StringVal("/heartwood/heartwood/consul/gossip-key"),
		"token_placeholder":   cty.StringVal("uninitialised"),
		"consul_version":      cty.StringVal("1.14.0"),
		"consul_zip_sha256":   cty.StringVal(""),
		"consul_servers":      cty.NumberIntVal(3),
		"consul_join_tag_key": cty.StringVal("heartwood:consul-join"),
		"label_tag_prefix":    cty.StringVal("heartwood:label:"),
		"swarm_address_pool":  cty.StringVal("10.192.0.0/12"),
	}
}

func scriptNames(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob("scripts/*.sh")
	if err != nil || len(names) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}

// TestTemplateVariablesMatchCalls checks that each template reads exactly the
// variables the configuration passes it (templatefile fails on a missing one
// at apply time; an extra one is dead configuration), and that the scripts
// the configuration ships are the ones in scripts/.
func TestTemplateVariablesMatchCalls(t *testing.T) {
	m := loadHere(t)
	calls, problems := templateCalls(m)
	for _, p := range problems {
		t.Error(p)
	}
	seen := map[string]bool{}
	for _, c := range calls {
		seen[c.Path] = true
		if got := templateVars(t, c.Path); !slices.Equal(got, c.Keys) {
			t.Errorf("%s: %s reads %v, the call passes %v", c.At, c.Path, got, c.Keys)
		}
	}
	for _, want := range []string{"templates/cloud-init.yaml.tftpl", "templates/node.env.tftpl"} {
		if !seen[want] {
			t.Errorf("no templatefile call renders %s", want)
		}
	}
	if got := slices.Sorted(slices.Values(templateVars(t, "templates/node.env.tftpl"))); !slices.Equal(got, sortedKeys(nodeEnvVars("cpu"))) {
		t.Errorf("node.env.tftpl reads %v; the test renders it with %v", got, sortedKeys(nodeEnvVars("cpu")))
	}

	list, ok := m.locals["bootstrap_scripts_list"]
	if !ok {
		t.Fatal("local bootstrap_scripts_list missing")
	}
	tuple, ok := list.Expr.(*hclsyntax.TupleConsExpr)
	if !ok {
		t.Fatal("bootstrap_scripts_list is not a list literal")
	}
	var shipped []string
	for _, e := range tuple.Exprs {
		s, ok := literalString(e)
		if !ok {
			t.Fatal("bootstrap_scripts_list holds a non-literal")
		}
		shipped = append(shipped, s)
	}
	sort.Strings(shipped)
	if onDisk := scriptNames(t); !slices.Equal(shipped, onDisk) {
		t.Errorf("bootstrap_scripts_list = %v, scripts/ holds %v", shipped, onDisk)
	}
}

// TestShellcheckScripts runs shellcheck on every script as it is in the
// repository.
func TestShellcheckScripts(t *testing.T) {
	for _, n := range scriptNames(t) {
		t.Run(n, func(t *testing.T) {
			if out := shellcheck(t, filepath.Join("scripts", n)); out != "" {
				t.Error(out)
			}
		})
	}
}

// TestShellcheckCatches proves the shellcheck run reports a bad script.
func TestShellcheckCatches(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.sh")
	if err := os.WriteFile(bad, []byte("#!/usr/bin/env bash\nf=$1\nrm -rf $f/*\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out := shellcheck(t, bad); !strings.Contains(out, "SC2086") {
		t.Errorf("shellcheck did not report the unquoted expansion: %q", out)
	}
}

// TestRenderedUserData renders the user data of each node group as
// Terraform would, then checks it: a cloud-config under EC2's size limit
// that writes exactly the repository's scripts and a settings file that
// passes shellcheck and satisfies the scripts' own load_env, and runs
// bootstrap.sh; the written scripts pass shellcheck as written.
func TestRenderedUserData(t *testing.T) {
	scripts := map[string]string{}
	encoded := map[string]cty.Value{}
	for _, n := range scriptNames(t) {
		b, err := os.ReadFile(filepath.Join("scripts", n))
		if err != nil {
			t.Fatal(err)
		}
		scripts[n] = string(b)
		encoded[n] = cty.StringVal(base64gzip(t, string(b)))
	}
	for _, group := range []string{"manager", "cpu", "gpu"} {
		t.Run(group, func(t *testing.T) {
			env := render(t, "templates/node.env.tftpl", nodeEnvVars(group))
			ud := render(t, "templates/cloud-init.yaml.tftpl", map[string]cty.Value{
				"scripts":  cty.MapVal(encoded),
				"node_env": cty.StringVal(base64gzip(t, env)),
			})
			t.Logf("user data: %d bytes (limit %d)", len(ud), userDataLimit)
			if len(ud) > userDataLimit {
				t.Errorf("user data is %d bytes, EC2 allows %d", len(ud), userDataLimit)
			}
			if !strings.HasPrefix(ud, "#cloud-config\n") {
				t.Fatalf("user data does not start with #cloud-config:\n%s", ud)
			}
			var cfg struct {
				WriteFiles []struct {
					Path, Owner, Permissions, Encoding, Content string
				} `yaml:"write_files"`
				Runcmd [][]string `yaml:"runcmd"`
			}
			if err := yaml.Unmarshal([]byte(ud), &cfg); err != nil {
				t.Fatalf("user data is not YAML: %v\n%s", err, ud)
			}

			dir := t.TempDir()
			written := map[string]string{}
			for _, f := range cfg.WriteFiles {
				if f.Encoding != "gz+b64" || f.Owner != "root:root" {
					t.Errorf("%s: encoding %q owner %q", f.Path, f.Encoding, f.Owner)
				}
				body, err := gunzipBase64(f.Content)
				if err != nil {
					t.Fatalf("%s: %v", f.Path, err)
				}
				written[f.Path] = body
				if err := os.WriteFile(filepath.Join(dir, filepath.Base(f.Path)), []byte(body), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for n, body := range scripts {
				p := "/usr/local/lib/heartwood/" + n
				if written[p] != body {
					t.Errorf("user data does not write %s as in scripts/%s", p, n)
				}
			}
			if got, want := len(written), len(scripts)+1; got != want {
				t.Errorf("user data writes %d files, want %d", got, want)
			}
			if env != written["/etc/heartwood/node.env"] {
				t.Error("user data does not write the rendered node.env")
			}
			if len(cfg.Runcmd) != 1 || len(cfg.Runcmd[0]) != 1 || written[cfg.Runcmd[0][0]] == "" {
				t.Errorf("runcmd %v does not run a written script", cfg.Runcmd)
			} else if filepath.Base(cfg.Runcmd[0][0]) != "bootstrap.sh" {
				t.Errorf("runcmd runs %s, want bootstrap.sh", cfg.Runcmd[0][0])
			}

			// The settings file is sourced by the scripts: it must be clean
			// shell and set everything load_env requires.
			if out := shellcheck(t, "--shell=bash", filepath.Join(dir, "node.env")); out != "" {
				t.Error(out)
			}
			cmd := exec.Command("bash", "-c", `set -eu; . "$0"; load_env; echo "$HW_GROUP $HW_SWARM_ROLE $HW_GPU"`, filepath.Join(dir, "lib.sh"))
			cmd.Env = append(os.Environ(), "HW_ENV_FILE="+filepath.Join(dir, "node.env"))
			out, err := cmd.CombinedOutput()
			role := map[string]string{"manager": "manager false", "cpu": "worker false", "gpu": "worker true"}[group]
			if err != nil || strings.TrimSpace(string(out)) != group+" "+role {
				t.Errorf("load_env with the rendered node.env: %v: %q", err, out)
			}
			var files []string
			for p := range written {
				if strings.HasSuffix(p, ".sh") {
					files = append(files, filepath.Join(dir, filepath.Base(p)))
				}
			}
			sort.Strings(files)
			if out := shellcheck(t, files...); out != "" {
				t.Error(out)
			}
		})
	}
}
