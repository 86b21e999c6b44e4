package ecs

import (
	"bytes"
	"encoding/json"
	"flag"
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
