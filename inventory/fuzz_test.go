package inventory

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
)

var hexID = regexp.MustCompile(`^[0-9a-f]{64}$`)

func FuzzDetectSelfID(f *testing.F) {
	const id = "4f1d2c3b4a5968778695a4b3c2d1e0f0123456789abcdef0123456789abcdef0"
	f.Add("12:cpu,cpuacct:/docker/"+id+"\n", "")
	f.Add("0::/system.slice/docker-"+id+".scope\n", "")
	f.Add("0::/\n", "612 600 254:1 /var/lib/docker/containers/"+id+"/hostname /etc/hostname rw - ext4 /dev/vda rw\n")
	f.Add("0::/init.scope\n", "700 30 0:50 / /var/lib/docker/containers/"+id+"/mounts/shm rw - tmpfs shm rw\n")
	f.Add("0::/../../docker-"+id+".scope\n", "")
	f.Add(strings.Repeat("x", 70000), strings.Repeat("/etc/hostname ", 10))
	f.Fuzz(func(t *testing.T, cgroup, mountinfo string) {
		got := detectSelfID(strings.NewReader(cgroup), strings.NewReader(mountinfo))
		if got == "" {
			return
		}
		if !hexID.MatchString(got) {
			t.Fatalf("detected %q, not a container ID", got)
		}
		if !strings.Contains(cgroup, got) && !strings.Contains(mountinfo, got) {
			t.Fatalf("detected %q, which is in neither input", got)
		}
	})
}

// FuzzFromInspect feeds arbitrary inspect documents (as the engine's JSON)
// through the conversion.
func FuzzFromInspect(f *testing.F) {
	seed := inspectFixture("a1", "web", "running")
	b, _ := json.Marshal(seed)
	f.Add(b)
	f.Add([]byte(`{"Id":"x","Name":"/x","Config":{"Labels":{"com.docker.swarm.service.name":"svc","com.docker.swarm.task.name":"svc.3.abc","com.docker.swarm.task.id":"abc"},"ExposedPorts":{"80/tcp":{},"1000-1010/udp":{},"garbage":{}}},"NetworkSettings":{"Ports":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"},{"HostIp":"::","HostPort":"x"}],"53/udp":null}}}`))
	f.Add([]byte(`{"Config":{"Labels":{"com.docker.swarm.service.name":"s","com.docker.swarm.task.name":"s.-1.x"},"Healthcheck":{"Test":["NONE"]}},"State":{"Status":"running","StartedAt":"garbage"}}`))
	f.Add([]byte(`{"NetworkSettings":{"Networks":{"a":null,"b":{"IPAddress":"10.0.0.2","Aliases":["x"]}}},"HostConfig":{"LogConfig":{"Type":"json-file","Config":{"max-size":"1m"}}}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		var in container.InspectResponse
		if err := json.Unmarshal(doc, &in); err != nil {
			return
		}
		c := fromInspect(in)
		if c == nil {
			t.Fatal("fromInspect returned nil")
		}
		if !slices.IsSortedFunc(c.Ports, func(a, b Port) int {
			switch {
			case a.ContainerPort != b.ContainerPort:
				return int(a.ContainerPort) - int(b.ContainerPort)
			case a.Proto != b.Proto:
				return strings.Compare(a.Proto, b.Proto)
			case a.HostIP != b.HostIP:
				return strings.Compare(a.HostIP, b.HostIP)
			}
			return int(a.HostPort) - int(b.HostPort)
		}) {
			t.Fatalf("ports not sorted: %v", c.Ports)
		}
		for i := 1; i < len(c.Ports); i++ {
			if c.Ports[i] == c.Ports[i-1] {
				t.Fatalf("duplicate port %v", c.Ports[i])
			}
		}
		if c.Swarm != nil && c.Swarm.Slot < 0 {
			t.Fatalf("negative slot %d", c.Swarm.Slot)
		}
		if c.Healthcheck != nil && (len(c.Healthcheck.Test) == 0 || c.Healthcheck.Test[0] == "NONE") {
			t.Fatalf("healthcheck %v kept", c.Healthcheck.Test)
		}
		if !c.Equal(c) {
			t.Fatal("a container is not Equal to itself")
		}
	})
}
