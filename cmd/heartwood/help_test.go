package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/heartwood-ops/heartwood/agent"
	"github.com/heartwood-ops/heartwood/config"
)

// Every command answers -h (and --help) with its help and exit code 0.
func TestEveryCommandHelpExitsZero(t *testing.T) {
	var cmds [][]string
	for _, c := range commands() {
		cmds = append(cmds, strings.Fields(c.name))
	}
	cmds = append(cmds, []string{"config"}, []string{"help"}, nil)
	for _, cmd := range cmds {
		for _, h := range []string{"-h", "--help"} {
			args := append(append([]string(nil), cmd...), h)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var out, errOut bytes.Buffer
				if code := run(context.Background(), args, nil, &out, &errOut); code != 0 {
					t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errOut.String())
				}
				if out.Len()+errOut.Len() == 0 {
					t.Error("no help printed")
				}
			})
		}
	}
}

// run -h lists every setting once, under its subsystem's heading, in
// the groups' order, and ends with examples.
func TestRunHelpGroupsSettings(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"run", "-h"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d", code)
	}
	help := errOut.String()
	last := -1
	for _, g := range settingGroups {
		i := strings.Index(help, "\n"+g.title+":\n")
		if i < 0 || i < last {
			t.Fatalf("group %q missing or out of order in:\n%s", g.title, help)
		}
		last = i
	}
	cfg := agent.DefaultConfig()
	fields, err := config.Fields(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		line := "\n  --" + f.Name
		i := strings.Index(help, line+" ")
		if i < 0 {
			i = strings.Index(help, line+"\n")
		}
		if i < 0 {
			t.Errorf("--%s missing", f.Name)
			continue
		}
		// Its group is the nearest heading above it.
		heading := help[strings.LastIndex(help[:i], "\n\n")+2:]
		heading, _, _ = strings.Cut(heading, "\n")
		heading = strings.TrimSuffix(heading, ":")
		if heading != groupOf(f.Name) {
			t.Errorf("--%s under %q, want %q", f.Name, heading, groupOf(f.Name))
		}
	}
	for _, want := range []struct{ name, group string }{
		{"docker-host", "Docker"}, {"consul-addr", "Consul and registrar"}, {"registrar.ip", "Consul and registrar"},
		{"es-url", "Elasticsearch and shipper"}, {"shipper.namespace", "Elasticsearch and shipper"},
		{"watchman.pressure", "Watchman"}, {"listen", "Agent and API"}, {"health-interval", "Agent and API"},
	} {
		if got := groupOf(want.name); got != want.group {
			t.Errorf("groupOf(%s) = %q, want %q", want.name, got, want.group)
		}
	}
	if !strings.Contains(help, "\nexamples:\n  heartwood run ") {
		t.Errorf("no examples:\n%s", help)
	}
}

// A bad flag value prints the error and a one-line hint, not the help.
func TestBadFlagValueGetsAHint(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--watchman.interval", "often"},
		{"config", "check", "--no-such-flag"},
		{"doctor", "--memory-limit", "lots"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, nil, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[1], "run `heartwood ") {
			t.Errorf("%v: stderr is not the error and a hint:\n%s", args, errOut.String())
		}
	}
}

// config example is generated from the settings: it parses back, has
// every setting, and its values are the defaults.
func TestConfigExampleInSync(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"config", "example"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var doc map[string]any
	if err := yaml.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("not YAML: %v", err)
	}
	def := agent.DefaultConfig()
	fields, err := config.Fields(&def)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		var node any = doc
		for _, k := range f.Path {
			m, ok := node.(map[string]any)
			if !ok {
				node = nil
				break
			}
			node, ok = m[k]
			if !ok {
				node = nil
				break
			}
		}
		if node == nil && !strings.Contains(out.String(), f.Path[len(f.Path)-1]+": \"\"") {
			t.Errorf("%s missing from the example", f.Name)
		}
		if !strings.Contains(out.String(), "(env "+f.Env()+")") {
			t.Errorf("%s: no comment with its help and variable", f.Name)
		}
	}
	// Loaded into an empty configuration, the example gives the defaults.
	var got agent.Config
	loader, err := config.NewLoader(&got)
	if err != nil {
		t.Fatal(err)
	}
	if err := loader.LoadYAML(out.Bytes()); err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	want, _ := config.Effective(&def)
	have, _ := config.Effective(&got)
	if !bytes.Equal(want, have) {
		t.Errorf("the example's values are not the defaults:\nwant\n%s\ngot\n%s", want, have)
	}
	// And it is a valid configuration file.
	path := filepath.Join(t.TempDir(), "heartwood.yml")
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"config", "check", "--config", path}, nil, &out, &errOut); code != 0 {
		t.Errorf("config check of the example: exit %d: %s", code, errOut.String())
	}
}

// config check prints the values the agent will use, not empty defaults.
func TestConfigCheckPrintsResolvedValues(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"config", "check", "--shipper.dataset", "app.logs"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{`node-name: "` + host + `"`, "patterns: [logs-app.logs-*]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("config check lacks %q:\n%s", want, out.String())
		}
	}
}
