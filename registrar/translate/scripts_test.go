package translate

import (
	"strings"
	"testing"

	"github.com/heartwood-ops/heartwood/inventory"
)

// TestScriptChecksNeedOptIn: a container label must not make the Consul
// agent run a command unless the operator allowed script checks.
func TestScriptChecksNeedOptIn(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels map[string]string
		// scripts is how many script checks the label defines; others are
		// the non-script checks that must stay either way.
		scripts, others int
	}{
		{"SERVICE_CHECK_SCRIPT", map[string]string{"SERVICE_CHECK_SCRIPT": "curl -sf http://$SERVICE_IP:$SERVICE_PORT/"}, 1, 0},
		{"SERVICE_<port>_CHECK_SCRIPT", map[string]string{"SERVICE_80_CHECK_SCRIPT": "rm -rf /tmp/x"}, 1, 0},
		{"SERVICE_CHECKS args", map[string]string{"SERVICE_CHECKS": `[{"id":"sh","args":["/bin/sh","-c","id"]},{"id":"port","tcp":true}]`}, 1, 1},
		{"both", map[string]string{"SERVICE_CHECK_SCRIPT": "true", "SERVICE_CHECKS": `[{"id":"a","args":["true"]},{"id":"b","args":["false"]}]`}, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := with(func(c *inventory.Container) { c.Labels = tc.labels })
			for _, allow := range []bool{false, true} {
				o := defaultOpts()
				o.AllowScriptChecks = allow
				res := Translate(c, o)
				if len(res.Services) != 1 {
					t.Fatalf("allow=%v: %d services, skipped %v", allow, len(res.Services), res.Skipped)
				}
				s := res.Services[0]
				scripts := 0
				for _, ch := range s.Checks {
					if len(ch.Args) > 0 {
						scripts++
					}
				}
				if wantScripts := map[bool]int{false: 0, true: tc.scripts}[allow]; scripts != wantScripts {
					t.Errorf("allow=%v: %d script checks, want %d", allow, scripts, wantScripts)
				}
				if got := len(s.Checks) - scripts; got != tc.others {
					t.Errorf("allow=%v: %d other checks, want %d", allow, got, tc.others)
				}
				dropped := map[bool]int{false: tc.scripts, true: 0}[allow]
				if s.ScriptChecksDropped != dropped {
					t.Errorf("allow=%v: ScriptChecksDropped = %d, want %d", allow, s.ScriptChecksDropped, dropped)
				}
				warned := 0
				for _, w := range s.Warnings {
					if strings.Contains(w, "registrar.allow-script-checks") {
						warned++
					}
				}
				if warned != dropped {
					t.Errorf("allow=%v: %d warnings naming registrar.allow-script-checks, want %d: %q", allow, warned, dropped, s.Warnings)
				}
			}
		})
	}
}
