package cgroup

import "testing"

func FuzzParseProcCgroup(f *testing.F) {
	f.Add([]byte("0::/docker/abc\n"))
	f.Add([]byte("4:cpu,cpuacct:/system.slice/docker-x.scope\n1:name=systemd:/\n"))
	f.Add([]byte("::\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := ParseProcCgroup(b)
		if err == nil && len(es) == 0 {
			t.Fatal("no error and no entries")
		}
		for _, e := range es {
			if e.Hierarchy < 0 || len(e.Path) == 0 || e.Path[0] != '/' {
				t.Fatalf("bad entry %+v", e)
			}
			_ = ContainerID(e.Path)
		}
	})
}

func FuzzParseFlatKeyed(f *testing.F) {
	f.Add([]byte("usage_usec 10\nuser_usec 5\n"))
	f.Add([]byte("total_rss 1\nx\n y 2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = parseFlatKeyed(b, func(k []byte, v uint64) {
			if len(k) == 0 {
				t.Fatal("empty key")
			}
		})
	})
}

func FuzzParsePSI(f *testing.F) {
	f.Add([]byte("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p PSI
		_ = parsePSI(b, &p)
	})
}

func FuzzParseBlkio(f *testing.F) {
	f.Add([]byte("8:0 Read 10\n8:0 Write 20\nTotal 30\n"), true)
	f.Add([]byte("8:0 rbytes=1 wbytes=2 rios=3 wios=4\n"), false)
	f.Fuzz(func(t *testing.T, b []byte, v1 bool) {
		var devs []BlkDev
		var err error
		if v1 {
			devs, err = parseBlkioV1(b, nil, true)
		} else {
			devs, err = parseIOStatV2(b, nil)
		}
		if err == nil {
			seen := map[[2]uint32]bool{}
			for _, d := range devs {
				k := [2]uint32{d.Major, d.Minor}
				if seen[k] {
					t.Fatalf("device %v twice", k)
				}
				seen[k] = true
			}
		}
	})
}
