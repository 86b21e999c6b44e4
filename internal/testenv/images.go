package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
)

// BusyboxImage is the tag of the test image built FROM scratch with Debian's
// static busybox: sh, sleep, nc, httpd, wget and the other applets under /bin.
const BusyboxImage = "heartwood-test/busybox:latest"

var busyboxOnce sync.Mutex

// Busybox makes sure BusyboxImage exists, building it if needed, and returns
// its tag. It needs /bin/busybox from Debian's busybox-static package.
func Busybox(t testing.TB, cli *client.Client) string {
	t.Helper()
	busyboxOnce.Lock()
	defer busyboxOnce.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := cli.ImageInspect(ctx, BusyboxImage); err == nil {
		return BusyboxImage
	}
	bin, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("testenv: read /bin/busybox (apt-get install busybox-static): %v", err)
	}
	files := map[string][]byte{
		"Dockerfile": []byte("FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nENV PATH=/bin\nCMD [\"sh\"]\n"),
		"busybox":    bin,
	}
	buildImage(ctx, t, cli, BusyboxImage, files)
	return BusyboxImage
}

// GoImage compiles the Go main package in dir (CGO off, static) and builds an
// image FROM scratch that runs it, tagged tag. Extra Dockerfile lines (EXPOSE,
// HEALTHCHECK, ...) may follow.
func GoImage(t testing.TB, cli *client.Client, tag, dir string, dockerfileExtra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "app")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testenv: go build %s: %v\n%s", dir, err, b)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	df := "FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n"
	for _, l := range dockerfileExtra {
		df += l + "\n"
	}
	buildImage(ctx, t, cli, tag, map[string][]byte{"Dockerfile": []byte(df), "app": bin})
	return tag
}

func buildImage(ctx context.Context, t testing.TB, cli *client.Client, tag string, files map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		mode := int64(0o644)
		if name != "Dockerfile" {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Now()}); err != nil {
			t.Fatalf("testenv: tar: %v", err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatalf("testenv: tar: %v", err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("testenv: tar: %v", err)
	}
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true, NetworkMode: "none"})
	if err != nil {
		t.Fatalf("testenv: build %s: %v", tag, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error  string `json:"error"`
			Stream string `json:"stream"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("testenv: build %s: read output: %v", tag, err)
		}
		if msg.Error != "" {
			t.Fatalf("testenv: build %s: %s", tag, msg.Error)
		}
	}
	if _, err := cli.ImageInspect(ctx, tag); err != nil {
		t.Fatalf("testenv: build %s: image missing after build: %v", tag, fmt.Errorf("inspect: %w", err))
	}
}
