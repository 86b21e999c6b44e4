package inventory

import (
	"bufio"
	"io"
	"os"
	"regexp"
	"strings"
)

var containerIDPattern = regexp.MustCompile(`(?:docker[-/]|/containers/)([0-9a-f]{64})`)

// DetectSelfID returns the ID of the container this process runs
// in, or "" on the host. It looks in /proc/self/cgroup (cgroup v1, and v2
// with the cgroupfs driver) and then in /proc/self/mountinfo for the bind
// mount of /etc/hostname, which Docker takes from the container's directory
// (cgroup v2 with a private cgroup namespace).
func DetectSelfID(procRoot string) string {
	open := func(name string) io.Reader {
		f, err := os.Open(procRoot + "/self/" + name)
		if err != nil {
			return strings.NewReader("")
		}
		// Both files are small; the process owns them until it exits.
		b, _ := io.ReadAll(io.LimitReader(f, 4<<20))
		f.Close()
		return strings.NewReader(string(b))
	}
	return detectSelfID(open("cgroup"), open("mountinfo"))
}

// detectSelfID finds the container ID in the contents of /proc/self/cgroup,
// then of /proc/self/mountinfo.
func detectSelfID(cgroup, mountinfo io.Reader) string {
	if id := scanFor(cgroup, func(string) bool { return true }); id != "" {
		return id
	}
	return scanFor(mountinfo, func(line string) bool {
		fields := strings.Fields(line)
		return len(fields) > 4 && fields[4] == "/etc/hostname"
	})
}

func scanFor(r io.Reader, keep func(line string) bool) string {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !keep(line) {
			continue
		}
		if m := containerIDPattern.FindStringSubmatch(line); m != nil {
			return m[1]
		}
	}
	return ""
}
