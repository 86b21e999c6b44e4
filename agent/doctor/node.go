package doctor

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types"
)

// MinDockerAPI is the oldest Docker Engine API the agent supports (Docker
// 20.10).
const MinDockerAPI = "1.41"

// DockerEngine is the part of the Docker client the Docker check uses.
type DockerEngine interface {
	ServerVersion(ctx context.Context) (types.Version, error)
}

// Docker checks that the engine answers on host and speaks at least
// MinDockerAPI.
func Docker(host string, d DockerEngine) Check {
	return Check{Name: "docker", Run: func(ctx context.Context) Result {
		v, err := d.ServerVersion(ctx)
		if err != nil {
			return fail("start dockerd, mount its socket into the agent's container, or set --docker-host",
				"%s: %v", host, err)
		}
		if !apiAtLeast(v.APIVersion, MinDockerAPI) {
			return fail("upgrade Docker to 20.10 or later",
				"%s: Docker %s speaks API %s, older than %s", host, v.Version, v.APIVersion, MinDockerAPI)
		}
		return ok("%s: Docker %s, API %s", host, v.Version, v.APIVersion)
	}}
}

// apiAtLeast compares dotted API versions ("1.41").
func apiAtLeast(have, want string) bool {
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i := range max(len(h), len(w)) {
		var a, b int
		if i < len(h) {
			a, _ = strconv.Atoi(h[i])
		}
		if i < len(w) {
			b, _ = strconv.Atoi(w[i])
		}
		if a != b {
			return a > b
		}
	}
	return true
}

// LogDirectory checks that Docker's containers directory can be listed and
// that a container's json-file log in it can be opened.
func LogDirectory(root string) Check {
	fix := "mount Docker's containers directory read-only into the agent (-v /var/lib/docker/containers:/var/lib/docker/containers:ro) or set --shipper.containers-root"
	return Check{Name: "log directory", Run: func(ctx context.Context) Result {
		entries, err := os.ReadDir(root)
		if err != nil {
			return fail(fix, "%v", err)
		}
		containers := 0
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			containers++
			p := filepath.Join(root, e.Name(), e.Name()+"-json.log")
			f, err := os.Open(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue // another log driver, or not started yet
			}
			if err != nil {
				return fail("run the agent as root or give it read access to "+root, "%v", err)
			}
			f.Close()
			return ok("%s: %d containers, logs readable", root, len(entries))
		}
		if containers == 0 {
			return ok("%s: readable, no containers yet", root)
		}
		return warn("use Docker's json-file (or local, read through the API) log driver",
			"%s: %d containers, none with a json-file log", root, containers)
	}}
}

// ProcAndCgroups checks the host /proc and cgroup layout the watchman
// reads: /proc/<pid>/cgroup and net/dev, and a cgroup v2 unified hierarchy
// or v1 cpuacct and memory controllers.
func ProcAndCgroups(procRoot, cgroupRoot string) Check {
	return Check{Name: "cgroups and /proc", Run: func(ctx context.Context) Result {
		for _, p := range []string{"self/cgroup", "self/net/dev", "stat"} {
			if _, err := os.Stat(filepath.Join(procRoot, p)); err != nil {
				return fail("mount the host's /proc into the agent (-v /proc:/host/proc:ro) and set --watchman.proc-root", "%v", err)
			}
		}
		cgFix := "mount the host's cgroup file system (-v /sys/fs/cgroup:/sys/fs/cgroup:ro) or set --watchman.cgroup-root"
		if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
			raw, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers"))
			if err != nil {
				return fail(cgFix, "%v", err)
			}
			ctrl := strings.Fields(string(raw))
			var missing []string
			for _, want := range []string{"cpu", "memory", "io"} {
				if !slices.Contains(ctrl, want) {
					missing = append(missing, want)
				}
			}
			if len(missing) > 0 {
				return warn("enable the controllers on the host (systemd does by default)",
					"%s: cgroup v2 without the %s controller(s): those figures are missing", cgroupRoot, strings.Join(missing, ", "))
			}
			return ok("%s: cgroup v2; %s: readable", cgroupRoot, procRoot)
		}
		var missing []string
		for _, c := range []string{"cpuacct", "memory"} {
			if _, err := os.Stat(filepath.Join(cgroupRoot, c)); err != nil {
				missing = append(missing, c)
			}
		}
		if len(missing) == 2 {
			return fail(cgFix, "%s: neither a cgroup v2 hierarchy nor cgroup v1 controllers", cgroupRoot)
		}
		if len(missing) > 0 {
			return warn(cgFix, "%s: cgroup v1 without %s", cgroupRoot, strings.Join(missing, ", "))
		}
		return ok("%s: cgroup v1; %s: readable", cgroupRoot, procRoot)
	}}
}
