package inventory

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDetectSelfContainerID(t *testing.T) {
	const id = "4f1d2c3b4a5968778695a4b3c2d1e0f0123456789abcdef0123456789abcdef0"
	tests := []struct {
		desc, cgroup, mountinfo, want string
	}{
		{"host, cgroup v1", "12:cpu,cpuacct:/user.slice\n0::/user.slice/session-1.scope\n", "", ""},
		{"container, cgroup v1 cgroupfs", "12:cpu,cpuacct:/docker/" + id + "\n", "", id},
		{"container, systemd driver", "0::/system.slice/docker-" + id + ".scope\n", "", id},
		{"container, cgroup v2 private namespace", "0::/\n",
			"612 600 254:1 /var/lib/docker/containers/" + id + "/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw\n", id},
		{"host with running containers' shm mounts", "0::/init.scope\n",
			"700 30 0:50 / /var/lib/docker/containers/" + id + "/mounts/shm rw - tmpfs shm rw\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
				t.Fatal(err)
			}
			for name, body := range map[string]string{"cgroup": tc.cgroup, "mountinfo": tc.mountinfo} {
				if err := os.WriteFile(filepath.Join(root, "self", name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := DetectSelfID(root); got != tc.want {
				t.Errorf("DetectSelfID = %q, want %q", got, tc.want)
			}
		})
	}
}
