package watchman

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/heartwood-ops/heartwood/watchman/procfs"
)

// connKey identifies one TCP connection.
type connKey struct{ local, remote netip.AddrPort }

// connWatch finds new inbound connections and datagrams in a network
// namespace by comparing its socket tables with a baseline. The kernel
// completes handshakes and queues data for a frozen process, so the
// connections show up as SYN_RECV, ESTABLISHED or CLOSE_WAIT entries on a
// listening port, and datagrams as a longer receive queue of a bound,
// unconnected UDP socket. It is the judge of both mechanisms: polling calls
// check every wake-poll, socket events call it when a socket reports.
type connWatch struct {
	files    []*procfs.File // net/tcp, net/tcp6
	udpFiles []*procfs.File // net/udp, net/udp6
	peers    []netip.Prefix
	baseline map[connKey]uint32 // connection -> receive queue at pause time
	udpBase  map[uint64]uint32  // UDP socket inode -> receive queue at pause time
	listen   map[uint16]bool
	conns    []procfs.Socket
	// watch holds the sockets worth holding for events, by inode: the
	// listeners, the inbound connections and the UDP servers at pause
	// time.
	watch map[uint64]watchedSocket
	// dev is the namespace's net/dev, whose received-packet counters gate
	// the polling rescans (see quiet); nil when it could not be opened.
	dev    *procfs.File
	ifaces []procfs.Iface
	rx     uint64 // received packets, all interfaces, at the last look
}

// sockKind is what a watched socket is.
type sockKind uint8

const (
	kindConn   sockKind = iota // an inbound connection: data wakes
	kindListen                 // a listener: a new connection wakes
	kindUDP                    // a UDP server: a datagram wakes
)

// watchedSocket is one socket worth holding for events.
type watchedSocket struct {
	kind  sockKind
	local netip.AddrPort
}

// wakeHit is what a check found: a new inbound TCP connection (or more
// data on one), or a datagram for a UDP socket (Remote is then unknown).
type wakeHit struct {
	procfs.Socket
	udp bool
}

// String describes the hit for the log and the decision event.
func (h wakeHit) String() string {
	switch {
	case h.udp:
		return "datagram to udp " + h.Local.String()
	case !h.Remote.IsValid(): // from a listener's event, tables not read
		return "connection to " + h.Local.String()
	}
	return "connection from " + h.Remote.String()
}

// newConnWatch opens /proc/<pid>/net/{tcp,tcp6,udp,udp6} and records the
// current connections and UDP queues as the baseline.
func newConnWatch(procRoot string, pid int, peers []netip.Prefix) (*connWatch, error) {
	cw := &connWatch{peers: peers, listen: map[uint16]bool{}, udpBase: map[uint64]uint32{}, watch: map[uint64]watchedSocket{}}
	// The packet counters are read before the tables: a packet that
	// arrives in between is then either in the baseline or counted as new.
	if f, err := procfs.OpenPID(procRoot, pid, "net/dev"); err == nil {
		cw.dev = f
		if rx, ok := cw.received(); ok {
			cw.rx = rx
		} else {
			cw.dev.Close()
			cw.dev = nil
		}
	}
	for _, name := range []string{"net/tcp", "net/tcp6", "net/udp", "net/udp6"} {
		f, err := procfs.OpenPID(procRoot, pid, name)
		if err != nil {
			if name != "net/tcp" { // IPv6 disabled, or an older fixture
				continue
			}
			cw.close()
			return nil, err
		}
		if name == "net/udp" || name == "net/udp6" {
			cw.udpFiles = append(cw.udpFiles, f)
		} else {
			cw.files = append(cw.files, f)
		}
	}
	if err := cw.scan(); err != nil {
		cw.close()
		return nil, err
	}
	cw.baseline = make(map[connKey]uint32, len(cw.conns))
	for _, s := range cw.conns {
		cw.baseline[connKey{s.Local, s.Remote}] = s.RxQueue
		if s.Inode != 0 { // 0: not accepted yet; its listener reports it
			cw.watch[s.Inode] = watchedSocket{kindConn, s.Local}
		}
	}
	if err := cw.scanUDP(func(s procfs.Socket) {
		cw.udpBase[s.Inode] = s.RxQueue
		cw.watch[s.Inode] = watchedSocket{kindUDP, s.Local}
	}); err != nil {
		cw.close()
		return nil, err
	}
	if len(cw.udpBase) == 0 { // no UDP server: nothing to re-read
		for _, f := range cw.udpFiles {
			f.Close()
		}
		cw.udpFiles = nil
	}
	return cw, nil
}

// scan re-reads the TCP tables into cw.listen and cw.conns (inbound
// connections on listening ports). Listeners go into cw.watch.
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
				if cw.baseline == nil && s.Inode != 0 {
					cw.watch[s.Inode] = watchedSocket{kindListen, s.Local}
				}
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

// scanUDP calls fn for every bound, unconnected UDP socket (a server's)
// that can be reached from outside the network namespace: one bound to a
// loopback address (Docker's embedded DNS server on 127.0.0.11) only hears
// the container's own, frozen, processes. The UDP tables have the TCP
// tables' layout.
func (cw *connWatch) scanUDP(fn func(procfs.Socket)) error {
	for _, f := range cw.udpFiles {
		b, err := f.Read()
		if err != nil {
			return err
		}
		if err := procfs.ParseTCP(b, func(s procfs.Socket) {
			if s.Local.Port() != 0 && s.Remote.Port() == 0 && s.Inode != 0 &&
				!s.Local.Addr().Unmap().IsLoopback() {
				fn(s)
			}
		}); err != nil {
			return err
		}
	}
	return nil
}

// check rescans and returns the first new inbound connection, or one with
// more queued data than at pause time, from a peer that is not ignored, or
// else a UDP socket with more queued data than at pause time (the sender
// of a datagram is not in the tables, so peers cannot be told apart).
func (cw *connWatch) check() (wakeHit, bool, error) {
	if err := cw.scan(); err != nil {
		return wakeHit{}, false, err
	}
	for _, s := range cw.conns {
		if cw.ignored(s.Remote.Addr()) {
			continue
		}
		rx, known := cw.baseline[connKey{s.Local, s.Remote}]
		if !known || s.RxQueue > rx {
			return wakeHit{Socket: s}, true, nil
		}
	}
	var hit wakeHit
	found := false
	if err := cw.scanUDP(func(s procfs.Socket) {
		if found {
			return
		}
		if rx, known := cw.udpBase[s.Inode]; known && s.RxQueue > rx {
			hit, found = wakeHit{Socket: s, udp: true}, true
		}
	}); err != nil {
		return wakeHit{}, false, err
	}
	return hit, found, nil
}

// received sums the received-packet counters of the namespace's
// interfaces (loopback included: a container sharing the namespace can
// connect over it).
func (cw *connWatch) received() (uint64, bool) {
	b, err := cw.dev.Read()
	if err != nil {
		return 0, false
	}
	if cw.ifaces, err = procfs.ParseNetDev(b, cw.ifaces); err != nil {
		return 0, false
	}
	var rx uint64
	for _, i := range cw.ifaces {
		rx += i.RxPackets
	}
	return rx, true
}

// quiet reports that no packet reached the namespace since the last look,
// so that the socket tables cannot have changed in a way check would
// report: a new connection, data or a datagram all arrive as packets.
// Reading the tables costs the kernel a walk over the host's whole TCP
// hash table (about half a millisecond per table here), net/dev a few
// microseconds. Without net/dev it never reports quiet.
func (cw *connWatch) quiet() bool {
	if cw.dev == nil {
		return false
	}
	rx, ok := cw.received()
	if !ok {
		return false
	}
	if rx == cw.rx {
		return true
	}
	cw.rx = rx
	return false
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
	for _, f := range cw.udpFiles {
		f.Close()
	}
	if cw.dev != nil {
		cw.dev.Close()
	}
	cw.files, cw.udpFiles, cw.dev = nil, nil, nil
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
	id, name, pid := t.c.ID, t.c.Name, t.c.State.Pid
	w.goRun(ctx, "connection watch", func(ctx context.Context) {
		defer cw.close()
		defer cancel()
		var sw *sockWatch
		var why error
		mech := MechanismPoll
		if w.cfg.WakeMechanism != MechanismPoll {
			sw, why = openSockWatch(w.cfg.ProcRoot, containerPIDs(w.cfg.ProcRoot, w.cfg.CgroupRoot, pid), cw.watch)
			if why == nil {
				mech = MechanismEvents
				defer sw.close()
				// Ending the watch interrupts the wait; the watch
				// waits for that function before it closes sw.
				fired := make(chan struct{})
				stop := context.AfterFunc(wctx, func() { defer close(fired); sw.interrupt() })
				defer func() {
					if !stop() {
						<-fired
					}
				}()
			}
		}
		w.watchStarted(name, mech, why, sw)
		ended := false
		endWatch := func() {
			if !ended {
				ended = true
				w.watchEnded(name, mech)
			}
		}
		defer endWatch()
		var tick <-chan time.Time
		if sw == nil {
			t := time.NewTicker(w.cfg.WakePoll)
			defer t.Stop()
			tick = t.C
		}
		// Socket events: a socket already readable when it was
		// registered (a connection queued before the pause) reported
		// then, and the tables judge it; so do events while peers are
		// configured (the tables show the source) and events of inbound
		// connections (data, or only the client closing). A later event
		// of a listener or a UDP server is a new connection or datagram:
		// it wakes without reading the tables.
		judgeNow := sw != nil && sw.pending
		for {
			var hit wakeHit
			found := false
			switch {
			case judgeNow:
				judgeNow = false
			case sw != nil:
				ws, ok, err := sw.waitReported(wctx)
				if !ok {
					if err != nil {
						w.log.Debug("connection watch ended", "container", name, "err", err)
					}
					return
				}
				if len(w.peers) == 0 && (ws.kind == kindListen || ws.kind == kindUDP) {
					hit, found = wakeHit{Socket: procfs.Socket{Local: ws.local}, udp: ws.kind == kindUDP}, true
				}
			default:
				select {
				case <-wctx.Done():
					return
				case <-tick:
				}
				if cw.quiet() {
					continue // no packet arrived: nothing to find
				}
			}
			if !found {
				var err error
				if hit, found, err = cw.check(); err != nil {
					w.log.Debug("connection watch ended", "container", name, "err", err)
					return
				}
			}
			if !found {
				continue
			}
			detected := time.Now()
			if !w.settled(wctx, id) {
				return
			}
			w.log.Info("connection to paused container; waking it", "container", name,
				"trigger", hit.String(), "mechanism", mech)
			w.mu.Lock()
			var ids []string
			if t, ok := w.ctrs[id]; ok {
				if t.watchStop != nil {
					t.watchStop = nil // this goroutine ends; wakeIDs must not cancel a new one
				}
				ids = w.wakeSetLocked(t, false)
			}
			w.mu.Unlock()
			// The duplicates are closed before the wake: the application
			// alone holds its sockets once it runs again.
			if sw != nil {
				sw.close()
			}
			endWatch()
			// The wake outlives this watch (which ends now) but not Run.
			if err := w.wakeIDs(ctx, ids, TriggerConnect, hit.String(), detected); err != nil {
				w.log.Warn("wake on connect failed", "container", name, "err", err)
			}
			return
		}
	})
}

// pauseSettle is how long after a pause a connection waits before it
// unpauses: the earliest a polling watch looks. Docker 20.10 can report a
// container as paused for a moment after an unpause that closely followed
// the pause (a pause then fails with "already paused", and an inspect then
// gives a stale view); socket events react within milliseconds, so without
// the wait they would hit that moment far more often.
const pauseSettle = 50 * time.Millisecond

// settled waits until the container's pause is pauseSettle old. It
// returns false if ctx ended first.
func (w *Watchman) settled(ctx context.Context, id string) bool {
	w.mu.Lock()
	var since time.Time
	if t, ok := w.ctrs[id]; ok {
		since = t.since
	}
	w.mu.Unlock()
	d := pauseSettle - time.Since(since)
	if since.IsZero() || d <= 0 {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// watchStarted records which mechanism watches a paused container: the
// connection_watch gauge, and one log line per mechanism and kind of reason
// (not one per pause).
func (w *Watchman) watchStarted(name, mech string, why error, sw *sockWatch) {
	kind := ""
	var ne *noEventsError
	if errors.As(why, &ne) {
		kind = ne.kind
	}
	w.mu.Lock()
	key := [2]string{sanitizeLabel(name), mech}
	w.watchSeries[key]++
	w.m.connWatch.WithLabelValues(key[0], key[1]).Set(1)
	first := !w.mechLogged[mech+"/"+kind]
	w.mechLogged[mech+"/"+kind] = true
	w.mu.Unlock()
	switch {
	case !first:
		w.log.Debug("watching paused container for connections", "container", name, "mechanism", mech, "reason", why)
	case mech == MechanismEvents:
		w.log.Info("watching paused containers for connections with socket events", "container", name, "mechanism", mech, "sockets", sw.count())
	case w.cfg.WakeMechanism == MechanismPoll:
		w.log.Info("watching paused containers for connections by polling (wake-mechanism poll)", "container", name, "mechanism", mech)
	default:
		w.log.Warn("socket events unavailable; polling paused containers for connections", "container", name, "mechanism", mech, "reason", why)
	}
}

// watchEnded removes the watch's connection_watch series once no watch of
// that container with that mechanism is left.
func (w *Watchman) watchEnded(name, mech string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := [2]string{sanitizeLabel(name), mech}
	if w.watchSeries[key]--; w.watchSeries[key] <= 0 {
		delete(w.watchSeries, key)
		w.m.connWatch.DeleteLabelValues(key[0], key[1])
	}
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
