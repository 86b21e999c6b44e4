package watchman

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

const tcp6Header = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
const tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

// Lines in /proc/net/tcp6 format (captured from a paused busybox httpd).
const (
	listen8080  = "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 332888 2 00000000ac1fdb60 100 0 0 10 0\n"
	fromGateway = "   1: 0000000000000000FFFF0000020015AC:1F90 0000000000000000FFFF0000010015AC:948E 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000067418930 20 4 28 10 -1\n"
	gwWithData  = "   1: 0000000000000000FFFF0000020015AC:1F90 0000000000000000FFFF0000010015AC:948E 01 00000000:00000013 00:00000000 00000000     0        0 0 1 0000000067418930 20 4 28 10 -1\n"
	fromPeer    = "   2: 0000000000000000FFFF0000020015AC:1F90 0000000000000000FFFF0000050015AC:948F 03 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000067418930 20 4 28 10 -1\n"
	halfClosed  = "   3: 0000000000000000FFFF0000020015AC:1F90 0000000000000000FFFF0000010015AC:9490 08 00000000:00000013 00:00000000 00000000     0        0 0 1 0000000067418930 20 4 28 10 -1\n"
	outbound    = "   4: 0000000000000000FFFF0000020015AC:A000 0000000000000000FFFF0000010015AC:1F90 01 00000000:00000010 00:00000000 00000000     0        0 0 1 0000000067418930 20 4 28 10 -1\n"
)

func TestConnWatch(t *testing.T) {
	peers, err := parsePeers([]string{"172.21.0.5"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		baseline, next string
		hit            bool
		remote         string
	}{
		{"nothing new", listen8080, listen8080, false, ""},
		{"new connection", listen8080, listen8080 + fromGateway, true, "172.21.0.1:38030"},
		{"health-check peer ignored", listen8080, listen8080 + fromPeer, false, ""},
		{"half-closed request", listen8080, listen8080 + halfClosed, true, "172.21.0.1:38032"},
		{"outbound connection ignored", listen8080, listen8080 + outbound, false, ""},
		{"existing idle keep-alive", listen8080 + fromGateway, listen8080 + fromGateway, false, ""},
		{"data on an existing connection", listen8080 + fromGateway, listen8080 + gwWithData, true, "172.21.0.1:38030"},
		{"no listener, no wake", "", fromGateway, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc, writeNet := fakeNetProc(t)
			write := func(v6 string) {
				writeNet("tcp", tcpHeader)
				writeNet("tcp6", tcp6Header+v6)
			}
			write(tc.baseline)
			cw := openConnWatch(t, proc, 9, peers)
			write(tc.next)
			s, hit, err := cw.check()
			if err != nil {
				t.Fatal(err)
			}
			if hit != tc.hit {
				t.Fatalf("hit = %v (%+v)", hit, s)
			}
			if hit && s.Remote != netip.MustParseAddrPort(tc.remote) {
				t.Errorf("remote %s, want %s", s.Remote, tc.remote)
			}
		})
	}
}

// netDevEth0 is /proc/<pid>/net/dev with one interface, eth0, that has
// received rxBytes bytes in rxPackets packets.
func netDevEth0(rxBytes, rxPackets int) string {
	return "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
		fmt.Sprintf("  eth0: %d %d 0 0 0 0 0 0 936 12 0 0 0 0 0 0\n", rxBytes, rxPackets)
}

// TestConnWatchPacketGate: polling rescans the socket tables only after the
// namespace received a packet; without net/dev it always rescans.
func TestConnWatchPacketGate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dev       bool
		steps     []int  // net/dev rx before each look (0: leave as is)
		tables    string // the tables from the second look on
		wantQuiet []bool // quiet() at each look
	}{
		{"no packet, no rescan", true, []int{10, 10}, listen8080, []bool{true, true}},
		{"a packet, a rescan, then quiet again", true, []int{10, 11, 11}, listen8080, []bool{true, false, true}},
		{"no net/dev: always rescan", false, []int{0, 0}, listen8080, []bool{false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc, writeNet := fakeNetProc(t)
			writeNet("tcp", tcpHeader)
			writeNet("tcp6", tcp6Header+listen8080)
			if tc.dev {
				writeNet("dev", netDevEth0(1296, 10))
			}
			cw := openConnWatch(t, proc, 9, nil)
			for i, rx := range tc.steps {
				if rx != 0 {
					writeNet("dev", netDevEth0(1296, rx))
				}
				if got := cw.quiet(); got != tc.wantQuiet[i] {
					t.Fatalf("look %d: quiet = %v, want %v", i, got, tc.wantQuiet[i])
				}
			}
		})
	}
	// The counters are read before the tables, so a connection that the
	// baseline missed comes with a packet the gate has not seen.
	proc, writeNet := fakeNetProc(t)
	writeNet("tcp", tcpHeader)
	writeNet("tcp6", tcp6Header+listen8080)
	writeNet("dev", netDevEth0(1296, 10))
	cw := openConnWatch(t, proc, 9, nil)
	writeNet("tcp6", tcp6Header+listen8080+fromGateway)
	writeNet("dev", netDevEth0(1296, 13))
	if cw.quiet() {
		t.Fatal("quiet after packets arrived")
	}
	if _, hit, err := cw.check(); err != nil || !hit {
		t.Fatalf("check after the packets: hit %v, err %v", hit, err)
	}
}

const udpHeader = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"

// Lines in /proc/net/udp format: a server bound to :9999, the same with a
// datagram queued, and a connected client socket (a resolver's).
const (
	udpServer       = "  123: 00000000:270F 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 0\n"
	udpServerQueued = "  123: 00000000:270F 00000000:0000 07 00000000:00000340 00:00000000 00000000     0        0 4242 2 0000000000000000 0\n"
	udpClient       = "  124: 020015AC:A001 0B00007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 4243 2 0000000000000000 0\n"
	udpClientQueued = "  124: 020015AC:A001 0B00007F:0035 01 00000000:00000340 00:00000000 00000000     0        0 4243 2 0000000000000000 0\n"
	dockerDNS       = "  125: 0B00007F:A7E1 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4244 2 0000000000000000 0\n"
	dockerDNSQueued = "  125: 0B00007F:A7E1 00000000:0000 07 00000000:00000340 00:00000000 00000000     0        0 4244 2 0000000000000000 0\n"
)

func TestConnWatchUDP(t *testing.T) {
	for _, tc := range []struct {
		name           string
		baseline, next string
		hit            bool
		watched        []uint64
	}{
		{"nothing queued", udpServer, udpServer, false, []uint64{4242}},
		{"datagram to a server socket", udpServer, udpServerQueued, true, []uint64{4242}},
		{"already queued at pause time", udpServerQueued, udpServerQueued, false, []uint64{4242}},
		{"connected client socket ignored", udpClient, udpClientQueued, false, nil},
		{"loopback server (Docker's DNS) ignored", dockerDNS, dockerDNSQueued, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc, writeNet := fakeNetProc(t)
			write := func(udp string) {
				writeNet("tcp", tcpHeader)
				writeNet("udp", udpHeader+udp)
			}
			write(tc.baseline)
			cw := openConnWatch(t, proc, 9, nil)
			var watched []uint64
			for ino := range cw.watch {
				watched = append(watched, ino)
			}
			if !slices.Equal(watched, tc.watched) {
				t.Errorf("sockets to hold %v, want %v", watched, tc.watched)
			}
			write(tc.next)
			h, hit, err := cw.check()
			if err != nil {
				t.Fatal(err)
			}
			if hit != tc.hit || hit && (!h.udp || h.Local.Port() != 9999) {
				t.Fatalf("hit = %v (%+v)", hit, h)
			}
		})
	}
}

// openConnWatch takes the baseline of /proc/9 under proc and closes the
// watch when the test ends.
func openConnWatch(t *testing.T, proc string, pid int, peers []netip.Prefix) *connWatch {
	t.Helper()
	cw, err := newConnWatch(proc, pid, peers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cw.close)
	return cw
}

// fakeNetProc makes a /proc with /proc/9/net and returns its root and a
// function that writes one of its files.
func fakeNetProc(t *testing.T) (root string, write func(name, content string)) {
	t.Helper()
	root = t.TempDir()
	dir := filepath.Join(root, "9", "net")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return root, func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
