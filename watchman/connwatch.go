package watchman

import (
	"context"
	"net/netip"
	"time"

	"github.com/heartwood-ops/heartwood/watchman/procfs"
)

// connKey identifies one TCP connection.
type connKey struct{ local, remote netip.AddrPort }

// connWatch finds new inbound connections in a network namespace by
// comparing its TCP tables with a baseline. The kernel completes handshakes
// and queues data for a frozen process, so the connections show up as
// SYN_RECV, ESTABLISHED or CLOSE_WAIT entries on a listening port.
type connWatch struct {
	files    []*procfs.File
	peers    []netip.Prefix
	baseline map[connKey]uint32 // connection -> receive queue at pause time
	listen   map[uint16]bool
	conns    []procfs.Socket
}

// newConnWatch opens /proc/<pid>/net/tcp and tcp6 and records the current
// connections as the baseline.
func newConnWatch(procRoot string, pid int, peers []netip.Prefix) (*connWatch, error) {
	cw := &connWatch{peers: peers, listen: map[uint16]bool{}}
	for _, name := range []string{"net/tcp", "net/tcp6"} {
		f, err := procfs.OpenPID(procRoot, pid, name)
		if err != nil {
			if name == "net/tcp6" { // IPv6 disabled
				continue
			}
			cw.close()
			return nil, err
		}
		cw.files = append(cw.files, f)
	}
	if err := cw.scan(); err != nil {
		cw.close()
		return nil, err
	}
	cw.baseline = make(map[connKey]uint32, len(cw.conns))
	for _, s := range cw.conns {
		cw.baseline[connKey{s.Local, s.Remote}] = s.RxQueue
	}
	return cw, nil
}

// scan re-reads the tables into cw.listen and cw.conns (inbound
// connections on listening ports).
func (cw *connWatch) scan() error {
	clear(cw.listen)
	cw.conns = cw.conns[:0]
	var all []procfs.Socket
	for _, f := range cw.files {
		b, err := f.Read()
		if err != nil {
			return err
		}
		if err := procfs.ParseTCP(b, func(s procfs.Socket) {
			switch s.State {
			case procfs.TCPListen:
				cw.listen[s.Local.Port()] = true
			case procfs.TCPEstablished, procfs.TCPSynRecv, procfs.TCPCloseWait:
				// CLOSE_WAIT: the client already half-closed after
				// sending its request (HTTP/1.0 clients, nc).
				all = append(all, s)
			}
		}); err != nil {
			return err
		}
	}
	for _, s := range all {
		if cw.listen[s.Local.Port()] {
			cw.conns = append(cw.conns, s)
		}
	}
	return nil
}

// check rescans and returns the first new inbound connection, or one with
// more queued data than at pause time, from a peer that is not ignored.
func (cw *connWatch) check() (procfs.Socket, bool, error) {
	if err := cw.scan(); err != nil {
		return procfs.Socket{}, false, err
	}
	for _, s := range cw.conns {
		if cw.ignored(s.Remote.Addr()) {
			continue
		}
		rx, known := cw.baseline[connKey{s.Local, s.Remote}]
		if !known || s.RxQueue > rx {
			return s, true, nil
		}
	}
	return procfs.Socket{}, false, nil
}

func (cw *connWatch) ignored(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range cw.peers {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (cw *connWatch) close() {
	for _, f := range cw.files {
		f.Close()
	}
	cw.files = nil
}

// watchPausedLocked starts a connection watch, under Run's ctx, for every
// running container the watchman paused that has none.
func (w *Watchman) watchPausedLocked(ctx context.Context) {
	for _, t := range w.ctrs {
		if t.pausedByUs() && t.state == StatePaused && t.c.State.Running {
			w.startWatchLocked(ctx, t)
		}
	}
}

// prepareWatchLocked takes the connection baseline of a container the
// watchman has just paused, before anyone can connect, and asks Run to
// start watching it (see watchPausedLocked).
func (w *Watchman) prepareWatchLocked(t *tracked) {
	if !w.cfg.WakeOnConnect || t.watchStop != nil || t.pendingWatch != nil ||
		t.c.NetworkMode == "host" || t.c.State.Pid <= 0 {
		return
	}
	cw, err := newConnWatch(w.cfg.ProcRoot, t.c.State.Pid, w.peers)
	if err != nil {
		w.log.Warn("cannot watch paused container for connections", "container", t.c.Name, "err", err)
		return
	}
	t.pendingWatch = cw
	w.kickWatch()
}

// kickWatch asks Run to start the connection watches that are missing.
func (w *Watchman) kickWatch() {
	select {
	case w.watchKick <- struct{}{}:
	default:
	}
}

// startWatchLocked starts watching a paused container for connections, if
// wake-on-connect is on and the container has its own network namespace.
func (w *Watchman) startWatchLocked(ctx context.Context, t *tracked) {
	if !w.cfg.WakeOnConnect || t.watchStop != nil || ctx.Err() != nil ||
		t.c.NetworkMode == "host" || t.c.State.Pid <= 0 {
		return
	}
	cw := t.pendingWatch
	t.pendingWatch = nil
	if cw == nil {
		var err error
		if cw, err = newConnWatch(w.cfg.ProcRoot, t.c.State.Pid, w.peers); err != nil {
			w.log.Warn("cannot watch paused container for connections", "container", t.c.Name, "err", err)
			return
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	t.watchStop = cancel
	id, name := t.c.ID, t.c.Name
	w.goRun(ctx, "connection watch", func(ctx context.Context) {
		defer cw.close()
		defer cancel()
		tick := time.NewTicker(w.cfg.WakePoll)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
			}
			s, hit, err := cw.check()
			if err != nil {
				w.log.Debug("connection watch ended", "container", name, "err", err)
				return
			}
			if !hit {
				continue
			}
			detected := time.Now()
			w.log.Info("connection to paused container; waking it", "container", name,
				"local", s.Local.String(), "remote", s.Remote.String())
			w.mu.Lock()
			var ids []string
			if t, ok := w.ctrs[id]; ok {
				if t.watchStop != nil {
					t.watchStop = nil // this goroutine ends; wakeIDs must not cancel a new one
				}
				ids = w.wakeSetLocked(t, false)
			}
			w.mu.Unlock()
			// The wake outlives this watch (which ends now) but not Run.
			if err := w.wakeIDs(ctx, ids, TriggerConnect, "connection from "+s.Remote.String(), detected); err != nil {
				w.log.Warn("wake on connect failed", "container", name, "err", err)
			}
			return
		}
	})
}

func (w *Watchman) stopWatchLocked(t *tracked) {
	if t.pendingWatch != nil {
		t.pendingWatch.close()
		t.pendingWatch = nil
	}
	if t.watchStop != nil {
		t.watchStop()
		t.watchStop = nil
	}
}
