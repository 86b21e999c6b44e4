// Package cgroup finds a container's control groups from /proc/<pid>/cgroup
// and reads its resource figures from the cgroup v1 or v2 files, keeping each
// file open and re-reading it with one pread from offset 0; a read refreshes
// the parts of the figures the caller asks for (Activity, Pressure, Detail).
//
// Both drivers Docker uses are handled because the path is taken from the
// kernel (/proc/<pid>/cgroup) rather than built from the container ID:
// cgroupfs puts containers under /docker/<id>, systemd under
// /system.slice/docker-<id>.scope. v1 hierarchies may be mounted one per
// controller (cpu, cpuacct) or combined (cpu,cpuacct); a hybrid host also has
// a v2 hierarchy under <root>/unified, which is where v1 hosts keep PSI.
package cgroup
