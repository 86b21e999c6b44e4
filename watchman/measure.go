package watchman

import (
	"context"
	"errors"
	"time"

	"github.com/heartwood-ops/heartwood/watchman/gpu"
)

// measurement is what the watchman last measured of one container: its
// open files, the last two samples and the rates between them.
type measurement struct {
	sm        *sampler
	openErr   error // why the cgroup could not be opened (Docker stats are used)
	errLogged bool
	cur, prev Sample
	hasCur    bool
	hasPrev   bool
	rates     Rates
	hasRates  bool
	fallingBk bool // Docker stats fallback in flight
}

// resetMeasurement closes the files and forgets the samples (the process
// changed).
func (m *measurement) resetMeasurement() {
	m.sm.close()
	m.sm, m.hasCur, m.hasPrev, m.hasRates, m.openErr = nil, false, false, false, nil
}

// sampleLocked takes one sample of t and updates its verdict. A panic while
// sampling one container costs that container's sample, not the tick.
func (w *Watchman) sampleLocked(ctx context.Context, t *tracked, g gpu.ContainerUsage, gpuKnown bool) {
	defer w.recoverPanic("sample", func() {
		// Start over with fresh files; closing the broken ones may panic
		// too.
		sm := t.sm
		t.sm, t.hasCur, t.hasPrev, t.hasRates = nil, false, false, false
		func() {
			defer func() { _ = recover() }()
			sm.close()
		}()
		w.m.sampleErrors.WithLabelValues("cgroup").Inc()
	})
	c := t.c
	if !c.State.Running || c.State.Pid <= 0 {
		return
	}
	if t.sm == nil {
		nets := w.nets
		if c.NetworkMode == "host" {
			nets = nil
		}
		sm, err := openSampler(w.cfg.ProcRoot, w.cfg.CgroupRoot, c.State.Pid, nets, w.cadence())
		if err != nil {
			if !errors.Is(err, errNoCgroup) {
				w.m.skipped.Inc()
				return
			}
			t.openErr = err
			if !t.errLogged {
				t.errLogged = true
				w.log.Warn("cannot read container cgroup; using Docker stats", "container", c.Name, "err", err)
			}
			w.fallbackLocked(ctx, t)
			return
		}
		t.sm, t.openErr, t.errLogged = sm, nil, false
	}
	t.prev, t.cur = t.cur, t.prev
	t.hasPrev = t.hasCur
	t.hasCur = false
	// Stamp each sample when its files are read, not when the tick began:
	// a tick over many containers takes long enough to skew the rates of
	// those read last.
	start := time.Now()
	quiet, err := t.sm.read(&t.cur, w.now())
	w.m.sampleDuration.Observe(time.Since(start).Seconds())
	if quiet {
		w.m.quietSamples.Inc()
	}
	if err != nil {
		t.sm.close()
		t.sm = nil
		t.hasPrev = false
		if vanished(err) {
			w.m.skipped.Inc() // stopped between two samples: not an error
			return
		}
		w.m.sampleErrors.WithLabelValues("cgroup").Inc()
		if !t.errLogged {
			t.errLogged = true
			w.log.Warn("container sample failed", "container", c.Name, "err", err)
		}
		return
	}
	if gpuKnown {
		t.cur.HasGPU, t.cur.GPUUtil, t.cur.GPUMemBytes = true, g.Util, g.MemoryBytes
	}
	t.hasCur = true
	w.observeLocked(t)
}

// fallbackLocked samples t through Docker's one-shot stats API in a
// goroutine of Run (bounded to two at a time).
func (w *Watchman) fallbackLocked(ctx context.Context, t *tracked) {
	if t.fallingBk || ctx.Err() != nil {
		return
	}
	t.fallingBk = true
	id := t.c.ID
	w.goRun(ctx, "docker stats", func(ctx context.Context) {
		var s Sample
		err := w.safely("docker stats", func() error {
			select {
			case w.fbSem <- struct{}{}:
				defer func() { <-w.fbSem }()
			case <-ctx.Done():
				return ctx.Err()
			}
			cctx, cancel := context.WithTimeout(ctx, min(w.dockerTimeout, 10*time.Second))
			defer cancel()
			return w.dockerSample(cctx, id, &s)
		})
		w.mu.Lock()
		defer w.mu.Unlock()
		t.fallingBk = false
		if err != nil {
			w.m.sampleErrors.WithLabelValues("docker").Inc()
			return
		}
		if cur, ok := w.ctrs[id]; !ok || cur != t || t.sm != nil {
			return
		}
		t.prev, t.hasPrev = t.cur, t.hasCur && t.cur.FromDocker
		t.cur, t.hasCur = s, true
		w.m.dockerSamples.Inc()
		w.observeLocked(t)
	})
}
