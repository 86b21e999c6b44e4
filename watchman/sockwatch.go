package watchman

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/heartwood-ops/heartwood/watchman/cgroup"
)

// Wake mechanisms: how a paused container's new connections are found.
// They are the values of the mechanism label of
// heartwood_watchman_connection_watch and of the wake-mechanism setting.
const (
	// MechanismAuto (setting only): socket events where the agent can
	// duplicate the container's sockets, polling elsewhere.
	MechanismAuto = "auto"
	// MechanismEvents: the watchman holds duplicates of the container's
	// listening TCP and bound UDP sockets (pidfd_getfd) and sleeps in epoll
	// until one becomes readable.
	MechanismEvents = "pidfd"
	// MechanismPoll: the watchman re-reads the container's socket tables
	// every wake-poll.
	MechanismPoll = "poll"
)

// sockWatch holds duplicates of a paused container's sockets in an epoll
// instance. A listening socket becomes readable when the kernel has put a
// completed handshake into its accept queue, a UDP or connected socket when
// data is queued; the kernel does both for a frozen process. The watchman
// never accepts or reads: the connection or datagram stays queued for the
// application, which gets it once it runs again. Holding a duplicate keeps
// the socket (and its port) alive, so close it as soon as the watch ends.
type sockWatch struct {
	ep   *os.File // the epoll instance, non-blocking, in Go's poller
	fds  []int    // the duplicates
	evs  []unix.EpollEvent
	what map[int32]watchedSocket // duplicate -> the socket it is
	nevs int                     // events in evs from the last wait
	// pending: some socket was already readable when registered.
	pending bool
}

// noEventsError is why socket events cannot be used for a container; the
// watch then polls. kind classifies it for the log (one line per kind).
type noEventsError struct {
	kind string // "kernel", "permission", "pid-namespace", "error"
	err  error
}

func (e *noEventsError) Error() string { return e.err.Error() }
func (e *noEventsError) Unwrap() error { return e.err }

// noEvents classifies err.
func noEvents(err error) error {
	kind := "error"
	switch {
	case errors.Is(err, unix.ENOSYS):
		kind = "kernel"
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		kind = "permission"
	case errors.Is(err, unix.ESRCH), errors.Is(err, errOtherProcess):
		kind = "pid-namespace"
	}
	return &noEventsError{kind: kind, err: err}
}

// errOtherProcess: a PID under the host's /proc names another process (or
// none) in the agent's PID namespace.
var errOtherProcess = errors.New("pidfd_open takes PIDs of the agent's own namespace: run the agent in the host's PID namespace")

// openSockWatch duplicates, from the processes pids, every socket whose
// inode is in want, and registers the duplicates edge-triggered with a new
// epoll instance. Registering reports a socket that is already readable
// once. A socket of the network namespace that no process of the container
// holds (Docker's embedded DNS server on 127.0.0.11, or a container sharing
// the namespace) is not watched: a connection to it reaches another
// process. An error says events cannot be used at all.
func openSockWatch(procRoot string, pids []int, want map[uint64]watchedSocket) (*sockWatch, error) {
	if err := samePIDNamespace(procRoot); err != nil {
		return nil, noEvents(err)
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, noEvents(fmt.Errorf("epoll_create1: %w", err))
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil, noEvents(err)
	}
	sw := &sockWatch{ep: os.NewFile(uintptr(epfd), "epoll"), evs: make([]unix.EpollEvent, 16), what: map[int32]watchedSocket{}}
	found := map[uint64]bool{}
	for _, pid := range pids {
		if len(found) == len(want) {
			break
		}
		if err := sw.dupFrom(procRoot, pid, want, found); err != nil {
			sw.close()
			return nil, err
		}
	}
	// Take the reports of sockets that were readable when registered,
	// so that every later report is a new event.
	n, err := unix.EpollWait(int(sw.ep.Fd()), sw.evs, 0)
	sw.pending = err != nil || n > 0
	return sw, nil
}

// samePIDNamespace checks that PIDs under procRoot (the host's /proc) are
// the agent's own: pidfd_open takes a PID of the caller's namespace.
func samePIDNamespace(procRoot string) error {
	self, err := os.Readlink(filepath.Join(procRoot, "self"))
	if err != nil {
		return fmt.Errorf("read %s/self: %w", procRoot, err)
	}
	if self != strconv.Itoa(os.Getpid()) {
		return fmt.Errorf("the agent runs in a PID namespace of its own (process %d there, %s in %s); %w", os.Getpid(), self, procRoot, errOtherProcess)
	}
	return nil
}

// dupFrom duplicates pid's sockets that are wanted and not yet found.
func (sw *sockWatch) dupFrom(procRoot string, pid int, want map[uint64]watchedSocket, found map[uint64]bool) error {
	dir := filepath.Join(procRoot, strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // the process ended
		}
		return noEvents(fmt.Errorf("list the sockets of pid %d: %w", pid, err))
	}
	var pidfd = -1
	defer func() {
		if pidfd >= 0 {
			_ = unix.Close(pidfd)
		}
	}()
	var buf [64]byte
	for _, e := range ents {
		n, err := unix.Readlink(filepath.Join(dir, e.Name()), buf[:])
		if err != nil {
			continue // closed meanwhile
		}
		ino, ok := parseSocketLink(buf[:n])
		ws, wanted := want[ino]
		if !ok || !wanted || found[ino] {
			continue
		}
		target, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pidfd < 0 {
			if pidfd, err = unix.PidfdOpen(pid, 0); err != nil {
				return noEvents(fmt.Errorf("pidfd_open(%d): %w", pid, explainPidfd(err)))
			}
		}
		fd, err := unix.PidfdGetfd(pidfd, target, 0)
		if err != nil {
			if errors.Is(err, unix.EBADF) {
				continue // closed meanwhile
			}
			return noEvents(fmt.Errorf("pidfd_getfd(%d, %d): %w", pid, target, explainPidfd(err)))
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Ino != ino {
			// pidfd_open found another process under that number: the
			// agent does not see the host's PID namespace.
			_ = unix.Close(fd)
			return noEvents(fmt.Errorf("pid %d names another process here; %w", pid, errOtherProcess))
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
		if err := unix.EpollCtl(int(sw.ep.Fd()), unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			_ = unix.Close(fd)
			return noEvents(fmt.Errorf("epoll_ctl: %w", err))
		}
		sw.fds = append(sw.fds, fd)
		sw.what[int32(fd)] = ws
		found[ino] = true
	}
	return nil
}

// explainPidfd adds what is missing to the errors of pidfd_open and
// pidfd_getfd.
func explainPidfd(err error) error {
	switch {
	case errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("%w (the kernel has no pidfd_getfd: Linux 5.6 or later is needed)", err)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w (the agent needs CAP_SYS_PTRACE and a seccomp profile that allows pidfd_getfd)", err)
	case errors.Is(err, unix.ESRCH):
		return fmt.Errorf("%w (the agent does not see the container's processes: run it in the host's PID namespace)", err)
	}
	return err
}

// wait blocks without using CPU until one of the sockets reported a new
// event (or was already readable when registered), or until interrupt.
func (sw *sockWatch) wait() error {
	rc, err := sw.ep.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	if err := rc.Read(func(fd uintptr) bool {
		sw.nevs, werr = unix.EpollWait(int(fd), sw.evs, 0)
		if errors.Is(werr, unix.EINTR) {
			return false
		}
		return werr != nil || sw.nevs > 0
	}); err != nil {
		return err
	}
	return werr
}

// waitReported waits like wait and returns the socket that reported: a
// listener or UDP server if any did, else any. ok is false when ctx ended
// or the wait failed (err).
func (sw *sockWatch) waitReported(ctx context.Context) (ws watchedSocket, ok bool, err error) {
	if err := sw.wait(); err != nil {
		if ctx.Err() != nil {
			return ws, false, nil
		}
		return ws, false, err
	}
	if ctx.Err() != nil {
		return ws, false, nil
	}
	for i, ev := range sw.evs[:max(sw.nevs, 0)] {
		w := sw.what[ev.Fd]
		if i == 0 || w.kind != kindConn {
			ws = w
		}
		if w.kind != kindConn {
			break
		}
	}
	return ws, true, nil
}

// interrupt makes a wait in progress (and every later one) return.
func (sw *sockWatch) interrupt() {
	_ = sw.ep.SetReadDeadline(time.Unix(1, 0))
}

// count is the number of sockets watched.
func (sw *sockWatch) count() int { return len(sw.fds) }

// close closes the duplicates and the epoll instance.
func (sw *sockWatch) close() {
	for _, fd := range sw.fds {
		_ = unix.Close(fd)
	}
	sw.fds = nil
	_ = sw.ep.Close()
}

// containerPIDs lists the processes of the container whose first process
// is pid, from its cgroup's cgroup.procs; pid first. If the cgroup cannot
// be read, pid alone.
func containerPIDs(procRoot, cgroupRoot string, pid int) []int {
	out := []int{pid}
	paths, err := cgroup.ForPID(procRoot, cgroupRoot, pid)
	if err != nil {
		return out
	}
	var dirs []string
	for _, ctrl := range []string{"freezer", "pids", "memory", "cpuacct"} {
		if d := paths.V1[ctrl]; d != "" {
			dirs = append(dirs, d)
		}
	}
	if paths.V2 != "" {
		dirs = append(dirs, paths.V2)
	}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		pids, err := parsePIDList(b)
		if err != nil {
			continue
		}
		for _, p := range pids {
			if p != pid {
				out = append(out, p)
			}
		}
		return out
	}
	return out
}

// parseSocketLink parses the target of a /proc/<pid>/fd/<n> link to a
// socket, "socket:[<inode>]".
func parseSocketLink(b []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(b, []byte("socket:["))
	if !ok {
		return 0, false
	}
	num, ok := bytes.CutSuffix(rest, []byte("]"))
	if !ok || len(num) == 0 || len(num) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (^uint64(0)-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parsePIDList parses a cgroup.procs file: one positive decimal PID a
// line.
func parsePIDList(b []byte) ([]int, error) {
	var out []int
	for len(b) > 0 {
		var l []byte
		l, b, _ = bytes.Cut(b, []byte{'\n'})
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		p, err := strconv.ParseInt(string(l), 10, 32)
		if err != nil || p <= 0 {
			return nil, fmt.Errorf("cgroup.procs: bad pid %q", l)
		}
		out = append(out, int(p))
	}
	return out, nil
}
