// Package doctor checks what the agent needs on this node — the Docker
// engine, the log directory, the cgroup and /proc layout, Consul and its
// token's permissions, Elasticsearch and the privileges to write
// Heartwood's streams, Kibana when configured, and the clock — and reports
// one line per check with what to fix.
//
// Each check is a function over a small interface or a directory, so that
// the tests can make every check fail.
package doctor

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/heartwood-ops/heartwood/internal/httpclient"
)

// Status is a check's outcome.
type Status int

// Outcomes, from best to worst.
const (
	OK Status = iota
	Skipped
	Warn
	Fail
)

func (s Status) String() string {
	switch s {
	case OK:
		return "OK"
	case Skipped:
		return "SKIP"
	case Warn:
		return "WARN"
	default:
		return "FAIL"
	}
}

// Result is what one check found.
type Result struct {
	Status Status
	// Detail says what was found ("API 1.47, Docker 28.5.2").
	Detail string
	// Fix says what to do when Status is Warn or Fail.
	Fix string
}

func ok(format string, a ...any) Result { return Result{Status: OK, Detail: fmt.Sprintf(format, a...)} }

func fail(fix, format string, a ...any) Result {
	return Result{Status: Fail, Detail: fmt.Sprintf(format, a...), Fix: fix}
}

func warn(fix, format string, a ...any) Result {
	return Result{Status: Warn, Detail: fmt.Sprintf(format, a...), Fix: fix}
}

// Check is one named check.
type Check struct {
	Name string
	Run  func(ctx context.Context) Result
}

// Run runs the checks in order, each with its own timeout, writes one line
// per check to w and returns the number of failed checks.
func Run(ctx context.Context, checks []Check, timeout time.Duration, w io.Writer) int {
	width := 0
	for _, c := range checks {
		width = max(width, len(c.Name))
	}
	failed := 0
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		r := c.Run(cctx)
		cancel()
		if r.Status == Fail {
			failed++
		}
		line := fmt.Sprintf("%-4s  %-*s  %s", r.Status, width, c.Name, oneLine(r.Detail))
		if r.Fix != "" && r.Status >= Warn {
			line += " — fix: " + oneLine(r.Fix)
		}
		fmt.Fprintln(w, line)
	}
	return failed
}

// oneLine keeps a detail on one line and bounded, so that a server's error
// page cannot flood the report.
func oneLine(s string) string {
	return httpclient.Excerpt(strings.Join(strings.Fields(s), " "), 300)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// sortedTrue returns the keys whose value is want, sorted.
func sortedTrue(m map[string]bool, want bool) []string {
	var out []string
	for _, k := range sortedKeys(m) {
		if m[k] == want {
			out = append(out, k)
		}
	}
	return out
}
