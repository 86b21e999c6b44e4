package shipper

import (
	"github.com/heartwood-ops/heartwood/shipper/jsonfile"
	"github.com/heartwood-ops/heartwood/shipper/logline"
	"github.com/heartwood-ops/heartwood/shipper/multiline"
	"github.com/heartwood-ops/heartwood/shipper/partial"
)

// assembly turns a reader's records into events: Docker's partial records
// are joined (partial), then multi-line events grouped (multiline, when
// the container asks for it). Both kinds of reader use it.
type assembly struct {
	asm *partial.Assembler
	ml  *multiline.Aggregator
	out func(*logline.Line)
}

func newAssembly(maxEventBytes int, set settings, out func(*logline.Line)) assembly {
	a := assembly{asm: partial.New(maxEventBytes), out: out}
	if set.multiline.Enabled() {
		a.ml, _ = multiline.New(set.multiline) // validated in settingsFor
	}
	return a
}

// push adds the record found between start and end.
func (a *assembly) push(rec *jsonfile.Record, start, end logline.Pos) {
	a.asm.Push(rec, start, end, a.onLine)
}

func (a *assembly) onLine(l *logline.Line) {
	if a.ml != nil {
		a.ml.Push(l, a.out)
		return
	}
	a.out(l)
}

// flush emits whatever is pending.
func (a *assembly) flush() {
	a.asm.Flush(a.onLine)
	if a.ml != nil {
		a.ml.Flush(a.out)
	}
}

// flushIdle ends multi-line events that waited longer than their timeout.
func (a *assembly) flushIdle(now int64) {
	if a.ml != nil {
		a.ml.FlushIdle(now, a.out)
	}
}

// firstPending returns where the oldest pending (not yet emitted) record
// starts, if any.
func (a *assembly) firstPending() (logline.Pos, bool) {
	if p, ok := a.asm.Pending(); ok {
		return p, true
	}
	if a.ml != nil {
		return a.ml.Pending()
	}
	return logline.Pos{}, false
}

// open reports whether a partial line or multi-line event is pending.
func (a *assembly) open() bool {
	_, ok := a.firstPending()
	return ok
}

// reset drops a pending partial line.
func (a *assembly) reset() { a.asm.Reset() }
