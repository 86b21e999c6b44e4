package benchkit

import (
	"strings"
	"syscall"
	"time"

	"github.com/heartwood-ops/heartwood/shipper"
)

// Words are log-like words for generated lines, so that compression and
// the terms dictionary see log text rather than constant or random bytes.
var Words = strings.Fields(`user request completed failed retry cache miss hit order payment item cart session token
expired invalid upstream timeout connection reset database query rows returned took ms status ok error warn info debug
handler GET POST PUT DELETE /api/v1/items /api/v1/orders /health latency bytes client server worker pool queue full`)

// Isolate keeps cfg's data streams, dead letters and templates to
// namespace ns, with templates named name at priority prio.
func Isolate(cfg *shipper.Config, ns, name string, prio int) {
	cfg.Namespace = ns
	cfg.Template.Name = name
	cfg.Template.Patterns = []string{"logs-*-" + ns}
	cfg.Template.Priority = prio
	cfg.Template.Namespace = ns
	cfg.Output.DeadLetter.Namespace = ns
}

// SelfCPU returns this process's user and system CPU time.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
