package procfs

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestParseNetDev(t *testing.T) {
	b, err := os.ReadFile("testdata/net_dev.container")
	if err != nil {
		t.Fatal(err)
	}
	ifs, err := ParseNetDev(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Iface{{Name: "lo"}, {Name: "eth0", RxBytes: 1374, RxPackets: 16, TxBytes: 248, TxPackets: 4}}
	if len(ifs) != len(want) {
		t.Fatalf("got %+v", ifs)
	}
	for i := range want {
		if ifs[i] != want[i] {
			t.Errorf("iface %d: got %+v, want %+v", i, ifs[i], want[i])
		}
	}
	// Reusing the slice does not allocate in the steady state.
	if n := testing.AllocsPerRun(100, func() { ifs, _ = ParseNetDev(b, ifs) }); n != 0 {
		t.Errorf("%v allocations per parse", n)
	}
	host, _ := os.ReadFile("testdata/net_dev.host")
	if ifs, err := ParseNetDev(host, nil); err != nil || len(ifs) < 2 {
		t.Errorf("host file: %v %+v", err, ifs)
	}
	for _, bad := range []string{"h\nh\neth0 1 2 3\n", "h\nh\n: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", "h\nh\neth0: 1 2 x 4 5 6 7 8 9 10 11 12 13 14 15 16\n"} {
		if _, err := ParseNetDev([]byte(bad), nil); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestParseTCP(t *testing.T) {
	var got []Socket
	b, _ := os.ReadFile("testdata/tcp6.paused-httpd")
	if err := ParseTCP(b, func(s Socket) { got = append(got, s) }); err != nil {
		t.Fatal(err)
	}
	want := []Socket{
		{Local: netip.MustParseAddrPort("[::]:8080"), Remote: netip.MustParseAddrPort("[::]:0"), State: TCPListen, RxQueue: 1, Inode: 332888},
		{Local: netip.MustParseAddrPort("172.21.0.2:8080"), Remote: netip.MustParseAddrPort("172.21.0.1:38030"), State: TCPCloseWait, RxQueue: 0x13},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("socket %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	got = nil
	b, _ = os.ReadFile("testdata/tcp.paused-httpd")
	if err := ParseTCP(b, func(s Socket) { got = append(got, s) }); err != nil || len(got) != 1 ||
		got[0].Local != netip.MustParseAddrPort("127.0.0.11:33935") || got[0].State != TCPListen {
		t.Errorf("tcp: %v %+v", err, got)
	}
	host, _ := os.ReadFile("testdata/tcp.host")
	if err := ParseTCP(host, func(Socket) {}); err != nil {
		t.Errorf("host tcp: %v", err)
	}
	for _, bad := range []string{
		"h\n 0: 0100007F:2198 00000000:0000 0A\n",
		"h\n 0: 0100007G:2198 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n",
		"h\n 0: 0100007F:2198 00000000:0000 ZZ 00000000:00000000 00:00000000 00000000 0 0 1\n",
		"h\n 0: 0100007F 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n",
	} {
		if err := ParseTCP([]byte(bad), func(Socket) {}); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestFileRereads(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "7", "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "7", "net", "dev")
	os.WriteFile(p, []byte("one"), 0o644)
	f, err := OpenPID(dir, 7, "net/dev")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	os.WriteFile(p, make([]byte, 10000), 0o644) // grows past the buffer
	b, err := f.Read()
	if err != nil || len(b) != 10000 {
		t.Fatalf("read %d bytes, %v", len(b), err)
	}
	if _, err := OpenPID(dir, 8, "net/dev"); err == nil {
		t.Error("opened a missing pid")
	}
	// The real /proc supports re-reading from offset 0.
	self, err := OpenPID("/proc", os.Getpid(), "net/dev")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	for range 2 {
		b, err := self.Read()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseNetDev(b, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzParseNetDev(f *testing.F) {
	b, _ := os.ReadFile("testdata/net_dev.container")
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		ifs, err := ParseNetDev(b, nil)
		if err == nil {
			for _, i := range ifs {
				if i.Name == "" {
					t.Fatal("empty name")
				}
			}
		}
	})
}

func FuzzParseTCP(f *testing.F) {
	for _, n := range []string{"testdata/tcp6.paused-httpd", "testdata/tcp.paused-httpd"} {
		b, _ := os.ReadFile(n)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = ParseTCP(b, func(s Socket) {
			if !s.Local.IsValid() || !s.Remote.IsValid() {
				t.Fatalf("invalid address in %+v", s)
			}
		})
	})
}
