// Package hoststat reads the two host figures every benchmark harness
// reports: the load average it ran at and a process's CPU time.
package hoststat

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"
)

// LoadAvg returns the 1, 5 and 15 minute load averages as /proc/loadavg
// gives them ("0.52 1.10 2.03"), or "?" when they cannot be read.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// userHZ is the unit of utime and stime in /proc/<pid>/stat.
const userHZ = 100

// ProcessCPU returns the user plus system CPU time process pid has used.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime from a /proc/<pid>/stat line. The
// command name may hold spaces and parentheses, so fields are counted from
// the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return 0, errors.New("malformed /proc/<pid>/stat")
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/<pid>/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / userHZ, nil
}

// CPUDuring returns the CPU time process pid used while fn ran.
func CPUDuring(pid int, fn func()) (time.Duration, error) {
	c0, err := ProcessCPU(pid)
	if err != nil {
		return 0, err
	}
	fn()
	c1, err := ProcessCPU(pid)
	if err != nil {
		return 0, err
	}
	return c1 - c0, nil
}
