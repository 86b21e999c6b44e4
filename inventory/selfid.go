package inventory

import (
	"bufio"
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
	if id := scanFor(procRoot+"/self/cgroup", func(string) bool { return true }); id != "" {
		return id
	}
	return scanFor(procRoot+"/self/mountinfo", func(line string) bool {
		fields := strings.Fields(line)
		return len(fields) > 4 && fields[4] == "/etc/hostname"
	})
}

func scanFor(path string, keep func(line string) bool) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
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
