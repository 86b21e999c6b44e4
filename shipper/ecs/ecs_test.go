package ecs

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/heartwood-ops/heartwood/shipper/jsonfile"
	"github.com/heartwood-ops/heartwood/shipper/logline"
)

var update = flag.Bool("update", false, "rewrite golden files")

func swarmSource() Source {
	return Source{
		ContainerID:   "4913708154b69803f43cf771bb1ef493cec3a7c70be7707e29659d8ee2cea0e7",
		ContainerName: "shop_web.2.x8k2n1",
		Image:         "registry.local:5000/shop/web:1.4.2",
		Labels: map[string]string{
			"com.docker.stack.namespace":      "shop",
			"com.docker.swarm.service.name":   "shop_web",
			"heartwood.logs.multiline.preset": "java",
		},
		ServiceName: "shop_web", ServiceID: "svc123", OrchestratorType: "swarm", Namespace: "shop",
		TaskID: "x8k2n1", TaskName: "shop_web.2.x8k2n1", TaskSlot: 2, NodeID: "node7",
		HostName: "worker-3", AgentVersion: "0.1.0", Dataset: "docker.container", DataNamespace: "default",
	}
}

func TestGolden(t *testing.T) {
	line := func(text string, stream jsonfile.Stream) *logline.Line {
		return &logline.Line{Text: []byte(text), Time: 1795863448123456789, TimeRaw: []byte("2026-11-28T10:57:28.123456789Z"),
			Stream: stream, Records: 1, Lines: 1}
	}
	multi := line("Exception in thread \"main\" java.lang.RuntimeException\n\tat a.B.c(B.java:1)", jsonfile.Stderr)
	multi.Lines, multi.Records, multi.Truncated = 2, 2, true
	noRaw := line("no raw time", jsonfile.Stdout)
	noRaw.TimeRaw = nil
	cases := []struct {
		file string
		src  Source
		evs  []Event
	}{
		{file: "swarm.golden", src: swarmSource(), evs: []Event{
			{Line: line("plain line", jsonfile.Stdout), Seq: 1},
			{Line: multi, Seq: 2},
			{Line: line("bad \xff\xfe utf8 \x00\x1b[31m ctrl \"quoted\" \\ é", jsonfile.Stdout), Seq: 3},
			{Line: line(`{"level":"warn","msg":"disk low","free":12}`, jsonfile.Stdout), Seq: 4, Message: []byte("disk low"),
				Level: "warn", Fields: []byte(`{"free":12}`)},
			{Line: noRaw, Seq: 5},
		}},
		{file: "plain.golden", src: Source{ContainerID: "abc", ContainerName: "web", Image: "busybox",
			ServiceName: "busybox", HostName: "h1", AgentVersion: "dev", Dataset: "docker.container", DataNamespace: "ns1"},
			evs: []Event{{Line: line("hello", jsonfile.Stdout), Seq: 0}}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			m := NewMeta(c.src)
			var out []byte
			for i := range c.evs {
				doc := m.Append(nil, &c.evs[i])
				if !json.Valid(doc) || !utf8.Valid(doc) {
					t.Fatalf("invalid JSON document: %s", doc)
				}
				var indented bytes.Buffer
				if err := json.Indent(&indented, doc, "", "  "); err != nil {
					t.Fatal(err)
				}
				out = append(out, indented.Bytes()...)
				out = append(out, '\n')
			}
			path := filepath.Join("testdata", c.file)
			if *update {
				if err := os.WriteFile(path, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("%s differs (run with -update to accept):\n%s", path, out)
			}
		})
	}
}

func BenchmarkAppend(b *testing.B) {
	m := NewMeta(swarmSource())
	l := &logline.Line{Text: []byte("2026-11-28 10:57:28 INFO request handled path=/api/v1/items status=200 dur=3ms"),
		TimeRaw: []byte("2026-11-28T10:57:28.123456789Z"), Stream: jsonfile.Stdout, Records: 1, Lines: 1}
	buf := make([]byte, 0, 4096)
	for b.Loop() {
		buf = m.Append(buf[:0], &Event{Line: l, Seq: 42})
	}
}

// TestLabelsTheFieldsAlreadyCarry: container.labels leaves out exactly the
// orchestrator labels whose value an ECS field of the document has.
func TestLabelsTheFieldsAlreadyCarry(t *testing.T) {
	swarm := map[string]string{
		"com.docker.swarm.service.name": "shop_web", "com.docker.swarm.service.id": "svc123",
		"com.docker.swarm.task.id": "x8k2n1", "com.docker.swarm.task.name": "shop_web.2.x8k2n1",
		"com.docker.swarm.node.id": "node7", "com.docker.stack.namespace": "shop",
		"com.docker.swarm.task": "", "org.opencontainers.image.version": "1.4.2",
	}
	cases := []struct {
		name   string
		src    Source
		labels map[string]string
		want   []string
	}{
		{name: "swarm task", src: swarmSource(), labels: swarm,
			want: []string{"com.docker.swarm.task", "org.opencontainers.image.version"}},
		{name: "value differs from the field: kept", src: swarmSource(),
			labels: map[string]string{"com.docker.swarm.service.name": "other", "com.docker.stack.namespace": "shop"},
			want:   []string{"com.docker.swarm.service.name"}},
		{name: "compose", src: Source{ServiceName: "web", OrchestratorType: "compose", Namespace: "proj"},
			labels: map[string]string{"com.docker.compose.project": "proj", "com.docker.compose.service": "web",
				"com.docker.compose.version": "2.29.1"},
			want: []string{"com.docker.compose.version"}},
		{name: "no orchestrator: empty fields match nothing", src: Source{ServiceName: "busybox"},
			labels: map[string]string{"com.docker.swarm.node.id": "", "a": "b"},
			want:   []string{"a", "com.docker.swarm.node.id"}},
		{name: "no labels", src: swarmSource(), labels: nil, want: []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.src.Labels = c.labels
			got := c.src.ownLabels()
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("ownLabels() = %q, want %q", got, c.want)
			}
			var doc struct {
				Container struct {
					Labels map[string]string `json:"labels"`
				} `json:"container"`
			}
			body := NewMeta(c.src).Append(nil, &Event{Line: &logline.Line{Text: []byte("x"), Time: 1}})
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if len(doc.Container.Labels) != len(c.want) {
				t.Errorf("document labels = %v, want keys %q", doc.Container.Labels, c.want)
			}
			for _, k := range c.want {
				if v, ok := doc.Container.Labels[k]; !ok || v != c.labels[k] {
					t.Errorf("document label %s = %q, %v; want %q", k, v, ok, c.labels[k])
				}
			}
		})
	}
}
