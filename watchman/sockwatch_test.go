package watchman

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"
)

func TestParseSocketLink(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ino  uint64
		want bool
	}{
		{"socket:[332888]", 332888, true},
		{"socket:[0]", 0, true},
		{"socket:[18446744073709551615]", 18446744073709551615, true},
		{"socket:[18446744073709551616]", 0, false}, // overflows
		{"socket:[]", 0, false},
		{"socket:[12a]", 0, false},
		{"socket:[12", 0, false},
		{"pipe:[332888]", 0, false},
		{"anon_inode:[eventpoll]", 0, false},
		{"/dev/null", 0, false},
		{"", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			ino, ok := parseSocketLink([]byte(tc.in))
			if ok != tc.want || ino != tc.ino {
				t.Errorf("parseSocketLink(%q) = %d, %v; want %d, %v", tc.in, ino, ok, tc.ino, tc.want)
			}
		})
	}
}

func TestParsePIDList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		err  bool
	}{
		{"", nil, false},
		{"4242\n", []int{4242}, false},
		{"1\n23\n456\n", []int{1, 23, 456}, false},
		{"1\n\n23", []int{1, 23}, false},
		{"0\n", nil, true},
		{"-5\n", nil, true},
		{"12x\n", nil, true},
		{"99999999999\n", nil, true},
	} {
		t.Run(strconv.Quote(tc.in), func(t *testing.T) {
			got, err := parsePIDList([]byte(tc.in))
			if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
				t.Errorf("parsePIDList(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestNoEventsKinds(t *testing.T) {
	for _, tc := range []struct {
		err  error
		kind string
	}{
		{fmt.Errorf("pidfd_getfd(1, 3): %w", explainPidfd(unix.ENOSYS)), "kernel"},
		{fmt.Errorf("pidfd_getfd(1, 3): %w", explainPidfd(unix.EPERM)), "permission"},
		{fmt.Errorf("pidfd_open(1): %w", explainPidfd(unix.ESRCH)), "pid-namespace"},
		{fmt.Errorf("pid 7: %w", errOtherProcess), "pid-namespace"},
		{errors.New("something else"), "error"},
	} {
		var ne *noEventsError
		if err := noEvents(tc.err); !errors.As(err, &ne) || ne.kind != tc.kind {
			t.Errorf("noEvents(%v) kind %v, want %s", tc.err, ne, tc.kind)
		}
	}
}

func FuzzParseSocketLink(f *testing.F) {
	for _, s := range []string{"socket:[332888]", "socket:[]", "pipe:[1]", "socket:[18446744073709551616]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ino, ok := parseSocketLink(b)
		if !ok {
			return
		}
		if want := "socket:[" + strconv.FormatUint(ino, 10) + "]"; want != string(b) && !leadingZeros(b) {
			t.Fatalf("parsed %q as %d", b, ino)
		}
	})
}

// leadingZeros reports whether the number in a socket link has leading
// zeros (the kernel never prints them; they still parse).
func leadingZeros(b []byte) bool {
	return len(b) > len("socket:[0]") && b[len("socket:[")] == '0'
}

func FuzzParsePIDList(f *testing.F) {
	for _, s := range []string{"", "1\n", "1\n23\n456\n", "0\n", "12x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pids, err := parsePIDList(b)
		if err != nil {
			return
		}
		for _, p := range pids {
			if p <= 0 {
				t.Fatalf("parsed a non-positive pid %d from %q", p, b)
			}
		}
	})
}

// TestConnectionWatchSeries: the connection_watch series of a container
// lives while any watch of it with that mechanism runs (a new pause's watch
// may start before the previous one has ended).
func TestConnectionWatchSeries(t *testing.T) {
	h := newHarness(t, nil)
	w := h.w
	count := func() int { return testutil.CollectAndCount(w.m.connWatch) }
	w.watchStarted("web", MechanismEvents, nil, &sockWatch{})
	w.watchStarted("web", MechanismEvents, nil, &sockWatch{})
	w.watchStarted("db", MechanismPoll, noEvents(unix.EPERM), nil)
	if n := count(); n != 2 {
		t.Fatalf("%d series, want 2", n)
	}
	if v := testutil.ToFloat64(w.m.connWatch.WithLabelValues("web", MechanismEvents)); v != 1 {
		t.Errorf("web pidfd = %v", v)
	}
	w.watchEnded("web", MechanismEvents)
	if n := count(); n != 2 {
		t.Fatalf("after one of two watches ended: %d series, want 2", n)
	}
	w.watchEnded("web", MechanismEvents)
	w.watchEnded("db", MechanismPoll)
	if n := count(); n != 0 {
		t.Fatalf("after every watch ended: %d series, want 0", n)
	}
}

// socketInode returns the inode of a socket of this process.
func socketInode(t *testing.T, c syscall.Conn) uint64 {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return st.Ino
}

// TestSockWatchReportsWithoutConsuming holds duplicates of this process's
// own listener and UDP socket (pidfd_getfd works on oneself without any
// capability): a connection queued before the watch counts as pending, every
// later connection and datagram reports once with the socket's kind, and
// the datagram is still there for the socket's owner.
func TestSockWatchReportsWithoutConsuming(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	lnAddr := netip.MustParseAddrPort(ln.Addr().String())
	udpAddr := netip.MustParseAddrPort(pc.LocalAddr().String())
	want := map[uint64]watchedSocket{
		socketInode(t, ln.(*net.TCPListener)): {kindListen, lnAddr},
		socketInode(t, pc.(*net.UDPConn)):     {kindUDP, udpAddr},
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx := context.Background()

	sw, err := openSockWatch("/proc", []int{os.Getpid()}, want)
	if err != nil {
		t.Fatal(err)
	}
	defer sw.close()
	if sw.count() != 2 || sw.pending {
		t.Fatalf("watching %d sockets, pending %v; want 2, false", sw.count(), sw.pending)
	}
	for range 2 { // each new connection reports once
		dial()
		ws, ok, err := sw.waitReported(ctx)
		if !ok || err != nil || ws.kind != kindListen || ws.local != lnAddr {
			t.Fatalf("after a connection: %+v %v %v", ws, ok, err)
		}
	}
	uc, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, err := uc.Write([]byte("datagram")); err != nil {
		t.Fatal(err)
	}
	ws, ok, err := sw.waitReported(ctx)
	if !ok || err != nil || ws.kind != kindUDP || ws.local != udpAddr {
		t.Fatalf("after a datagram: %+v %v %v", ws, ok, err)
	}
	buf := make([]byte, 64)
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := pc.ReadFrom(buf); err != nil || string(buf[:n]) != "datagram" {
		t.Fatalf("the owner's read: %q, %v", buf[:n], err)
	}

	// Connections queued (two, not accepted) before a new watch: pending.
	sw2, err := openSockWatch("/proc", []int{os.Getpid()}, want)
	if err != nil {
		t.Fatal(err)
	}
	defer sw2.close()
	if !sw2.pending {
		t.Error("a listener with queued connections is not pending")
	}
	// Ending the watch interrupts a wait.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	sw2.interrupt()
	if _, ok, err := sw2.waitReported(cctx); ok || err != nil {
		t.Errorf("wait after the end of the watch: ok %v, err %v", ok, err)
	}
	// Every duplicate is closed with the watch.
	dups := slices.Clone(sw.fds)
	sw.close()
	for _, fd := range dups {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
			t.Errorf("duplicate fd %d still open after close (%v)", fd, err)
		}
	}
}
