// Package layout holds the test that keeps the repository's one-way data
// flow true: Docker → inventory → {registrar, shipper, watchman} → outputs,
// with agent/ and cmd/ wiring them together on top.
package layout

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/heartwood-ops/heartwood"

// subsystems are the top-level packages that consume the inventory and must
// never import each other.
var subsystems = []string{"registrar", "shipper", "watchman"}

// pkg is the part of `go list -json` output the rules read.
type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// rel returns an import path relative to the module ("" for outside ones).
func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

// under reports whether path is dir or a package below it.
func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

func topOf(path string) string { top, _, _ := strings.Cut(path, "/"); return top }

// violation checks one import edge from → to (both module-relative) and
// says what is wrong with it, or "".
func violation(from, to string) string {
	// Only the top floor (agent/, cmd/) may import agent/.
	if under(to, "agent") && !under(from, "agent") && !under(from, "cmd") {
		return "only agent/ and cmd/ may import agent/..."
	}
	fromTop, toTop := topOf(from), topOf(to)
	for _, s := range subsystems {
		if fromTop == s {
			for _, other := range subsystems {
				if other != s && toTop == other {
					return "subsystems never import each other"
				}
			}
		}
	}
	// The ground floor (inventory, config, internal helpers) feeds the
	// subsystems and never depends on them.
	if under(from, "inventory") || under(from, "config") || under(from, "internal") {
		for _, s := range subsystems {
			if under(to, s) {
				return "the inventory, config and internal packages never import a subsystem"
			}
		}
	}
	// The wiring sees each subsystem through its root package only.
	if under(from, "agent") {
		for _, s := range subsystems {
			if under(to, s) && to != s {
				return "agent/ imports subsystem internals; use the subsystem's root package"
			}
		}
	}
	return ""
}

func TestViolationRules(t *testing.T) {
	tests := []struct {
		from, to string
		bad      bool
	}{
		{"registrar", "inventory", false},
		{"registrar/translate", "inventory", false},
		{"shipper", "config", false},
		{"agent", "registrar", false},
		{"agent", "shipper", false},
		{"agent", "agent/api", false},
		{"cmd/heartwood", "agent", false},
		{"cmd/heartwood", "dashboards", false},
		{"bench/watchman", "watchman", false},
		{"registrar", "agent/api", true},
		{"inventory", "agent", true},
		{"internal/testenv", "agent/consulclient", true},
		{"registrar", "shipper", true},
		{"shipper/esout", "watchman/policy", true},
		{"watchman", "registrar/translate", true},
		{"agent", "shipper/esout", true},
		{"agent/api", "watchman/policy", true},
		{"inventory", "registrar", true},
		{"inventory/inventorytest", "shipper", true},
		{"config", "shipper/esout", true},
		{"internal/testenv", "watchman", true},
		{"inventory/inventorytest", "inventory", false},
	}
	for _, tc := range tests {
		t.Run(tc.from+"→"+tc.to, func(t *testing.T) {
			if got := violation(tc.from, tc.to) != ""; got != tc.bad {
				t.Fatalf("violation(%q, %q) = %v, want %v", tc.from, tc.to, got, tc.bad)
			}
		})
	}
}

// TestImportRules lists every package of the module with every build tag
// the repository uses, and checks each import (tests included).
func TestImportRules(t *testing.T) {
	seen := map[string]bool{}
	var problems []string
	for _, tags := range []string{"", "integration", "bench", "nvml"} {
		args := []string{"list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports"}
		if tags != "" {
			args = append(args, "-tags", tags)
		}
		args = append(args, module+"/...")
		cmd := exec.Command("go", args...)
		cmd.Dir = "../.."
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		n := 0
		for dec.More() {
			var p pkg
			if err := dec.Decode(&p); err != nil {
				t.Fatalf("decode go list output: %v", err)
			}
			n++
			from, ok := rel(p.ImportPath)
			if !ok {
				continue
			}
			for _, list := range [][]string{p.Imports, p.TestImports, p.XTestImports} {
				for _, imp := range list {
					to, ok := rel(imp)
					if !ok || to == from {
						continue
					}
					if why := violation(from, to); why != "" {
						msg := fmt.Sprintf("%s imports %s: %s", from, to, why)
						if !seen[msg] {
							seen[msg] = true
							problems = append(problems, msg)
						}
					}
				}
			}
		}
		if n < 10 {
			t.Fatalf("go list -tags %q found only %d packages; is the test running in the module?", tags, n)
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

// TestSubsystemsUseInventory checks that each subsystem is fed by the shared
// inventory rather than its own Docker client for container discovery.
func TestSubsystemsUseInventory(t *testing.T) {
	for _, s := range subsystems {
		out, err := exec.Command("go", "list", "-deps", module+"/"+s).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", s, err)
		}
		found := false
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if sc.Text() == module+"/inventory" {
				found = true
			}
		}
		if !found {
			t.Errorf("%s does not depend on %s/inventory", s, module)
		}
	}
}
