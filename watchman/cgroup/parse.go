package cgroup

import (
	"bytes"
	"errors"
	"strconv"
)

// newline separates the lines of the files parsed here.
var newline = []byte{'\n'}

// errSyntax reports a file whose contents do not have the expected shape.
var errSyntax = errors.New("malformed cgroup file")

// parseUint parses a decimal unsigned integer without allocating. "max" (a
// v2 limit) yields max, true.
func parseUint(b []byte) (uint64, bool) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return 0, false
	}
	if string(b) == "max" {
		return Unlimited, true
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// Unlimited is the value reported for a limit that is not set ("max" in v2,
// a huge page-aligned number in v1).
const Unlimited = ^uint64(0)

// v1Unlimited is the smallest v1 limit treated as "no limit": v1 reports
// LONG_MAX rounded down to the page size.
const v1Unlimited = uint64(1) << 62

// parseSingle parses a file holding one unsigned integer.
func parseSingle(b []byte) (uint64, error) {
	n, ok := parseUint(b)
	if !ok {
		return 0, errSyntax
	}
	return n, nil
}

// parseFlatKeyed calls fn for every "key value" line (memory.stat, cpu.stat,
// cpuacct.stat). Lines that are not two fields are skipped; values that are
// not numbers are an error.
func parseFlatKeyed(b []byte, fn func(key []byte, val uint64)) error {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, newline)
		k, v, ok := bytes.Cut(line, []byte{' '})
		if !ok || len(k) == 0 {
			continue
		}
		n, ok := parseUint(v)
		if !ok {
			return errSyntax
		}
		fn(k, n)
	}
	return nil
}

// parseFields stores the value of keys[i] of a flat keyed file in *dst[i];
// other keys are ignored, and a missing key leaves its field alone.
func parseFields(b []byte, keys []string, dst ...*uint64) error {
	return parseFlatKeyed(b, func(k []byte, v uint64) {
		for i, key := range keys {
			if string(k) == key {
				*dst[i] = v
				return
			}
		}
	})
}

// PSILine is one line ("some" or "full") of a pressure file.
type PSILine struct {
	Avg10, Avg60, Avg300 float64
	// Total is the accumulated stall time in microseconds.
	Total uint64
}

// PSI is a parsed cpu.pressure, memory.pressure or io.pressure file.
type PSI struct {
	Some, Full PSILine
}

// parsePSI parses "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" lines.
func parsePSI(b []byte, p *PSI) error {
	seen := false
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, newline)
		kind, rest, ok := bytes.Cut(line, []byte{' '})
		if !ok {
			continue
		}
		var dst *PSILine
		switch string(kind) {
		case "some":
			dst = &p.Some
		case "full":
			dst = &p.Full
		default:
			continue
		}
		for len(rest) > 0 {
			var k, v []byte
			if k, v, rest, ok = nextKeyValue(rest); !ok {
				return errSyntax
			}
			switch string(k) {
			case "total":
				n, ok := parseUint(v)
				if !ok {
					return errSyntax
				}
				dst.Total = n
			case "avg10", "avg60", "avg300":
				x, err := strconv.ParseFloat(string(v), 64)
				if err != nil {
					return errSyntax
				}
				switch string(k) {
				case "avg10":
					dst.Avg10 = x
				case "avg60":
					dst.Avg60 = x
				default:
					dst.Avg300 = x
				}
			}
		}
		seen = true
	}
	if !seen {
		return errSyntax
	}
	return nil
}

// nextKeyValue splits the first space-separated "key=value" field off
// rest; ok is false when that field has no '='.
func nextKeyValue(rest []byte) (k, v, tail []byte, ok bool) {
	f, tail, _ := bytes.Cut(rest, []byte{' '})
	k, v, ok = bytes.Cut(f, []byte{'='})
	return k, v, tail, ok
}

// BlkDev is the block I/O of one device.
type BlkDev struct {
	Major, Minor uint32
	ReadBytes    uint64
	WriteBytes   uint64
	Reads        uint64
	Writes       uint64
}

// findDev returns the entry for major:minor, appending one if needed.
func findDev(devs []BlkDev, major, minor uint32) ([]BlkDev, *BlkDev) {
	for i := range devs {
		if devs[i].Major == major && devs[i].Minor == minor {
			return devs, &devs[i]
		}
	}
	devs = append(devs, BlkDev{Major: major, Minor: minor})
	return devs, &devs[len(devs)-1]
}

func parseMajMin(b []byte) (uint32, uint32, bool) {
	ma, mi, ok := bytes.Cut(b, []byte{':'})
	if !ok {
		return 0, 0, false
	}
	x, ok1 := parseUint(ma)
	y, ok2 := parseUint(mi)
	if !ok1 || !ok2 || x > 1<<32-1 || y > 1<<32-1 {
		return 0, 0, false
	}
	return uint32(x), uint32(y), true
}

// parseBlkioV1 parses blkio.*io_service_bytes* (bytes=true) or
// blkio.*io_serviced* (bytes=false) lines "8:0 Read 4096" into devs.
func parseBlkioV1(b []byte, devs []BlkDev, bytesFile bool) ([]BlkDev, error) {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, newline)
		dev, rest, ok := bytes.Cut(line, []byte{' '})
		if !ok {
			continue // "Total 0"
		}
		major, minor, ok := parseMajMin(dev)
		if !ok {
			continue
		}
		op, val, ok := bytes.Cut(rest, []byte{' '})
		if !ok {
			return devs, errSyntax
		}
		n, ok := parseUint(val)
		if !ok {
			return devs, errSyntax
		}
		var d *BlkDev
		switch string(op) {
		case "Read":
			devs, d = findDev(devs, major, minor)
			if bytesFile {
				d.ReadBytes = n
			} else {
				d.Reads = n
			}
		case "Write":
			devs, d = findDev(devs, major, minor)
			if bytesFile {
				d.WriteBytes = n
			} else {
				d.Writes = n
			}
		}
	}
	return devs, nil
}

// parseIOStatV2 parses io.stat lines "8:0 rbytes=1 wbytes=2 rios=3 wios=4
// dbytes=0 dios=0".
func parseIOStatV2(b []byte, devs []BlkDev) ([]BlkDev, error) {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, newline)
		dev, rest, ok := bytes.Cut(line, []byte{' '})
		if !ok {
			continue
		}
		major, minor, ok := parseMajMin(dev)
		if !ok {
			return devs, errSyntax
		}
		var d *BlkDev
		devs, d = findDev(devs, major, minor)
		for len(rest) > 0 {
			var k, v []byte
			if k, v, rest, ok = nextKeyValue(rest); !ok {
				continue
			}
			n, ok := parseUint(v)
			if !ok {
				return devs, errSyntax
			}
			switch string(k) {
			case "rbytes":
				d.ReadBytes = n
			case "wbytes":
				d.WriteBytes = n
			case "rios":
				d.Reads = n
			case "wios":
				d.Writes = n
			}
		}
	}
	return devs, nil
}

// parseFreezerV1 reports whether freezer.state says FROZEN or FREEZING.
func parseFreezerV1(b []byte) (bool, error) {
	switch string(bytes.TrimSpace(b)) {
	case "FROZEN", "FREEZING":
		return true, nil
	case "THAWED":
		return false, nil
	}
	return false, errSyntax
}
