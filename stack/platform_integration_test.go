//go:build integration

package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heartwood-ops/heartwood/internal/poll"
)

// The local variant's fixed addresses (stack/local/local.yml).
const (
	webURL    = "http://127.0.0.1:8080"
	consulURL = "http://127.0.0.1:18500"
	esURL     = "http://127.0.0.1:19200"
	stackName = "platform"
)

// platformServices are the long-running services Heartwood must register in
// Consul under their names.
var platformServices = []string{"web", "trainer", "simulator", "postgres", "mongodb", "influxdb", "redis", "elasticsearch"}

// TestIntegrationPlatform deploys the local platform with make stack-up and
// uses it as a person and an operator would, then removes it.
func TestIntegrationPlatform(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "stack", "local", "stack.sh")
	run(t, root, 15*time.Minute, script, "test-deps")

	t.Cleanup(func() {
		out := runErr(t, root, 5*time.Minute, "make", "-s", "stack-down")
		t.Logf("make stack-down:\n%s", out)
		left := strings.TrimSpace(runErr(t, root, time.Minute, "docker", "ps", "-aq", "--filter", "label=com.docker.stack.namespace="+stackName))
		if left != "" {
			t.Errorf("containers of the stack left after make stack-down: %s", left)
		}
		// After stack-down the node may have left the Swarm it was put in.
		svcs, err := command(root, nil, time.Minute, "docker", "service", "ls", "-q", "--filter", "label=com.docker.stack.namespace="+stackName)
		if svcs = strings.TrimSpace(svcs); (err == nil && svcs != "") || (err != nil && !strings.Contains(svcs, "not a swarm manager")) {
			t.Errorf("services of the stack left after make stack-down: %s %v", svcs, err)
		}
	})
	start := time.Now()
	out := run(t, root, 40*time.Minute, "make", "-s", "stack-up")
	t.Logf("make stack-up took %s:\n%s", time.Since(start).Round(time.Second), tail(out, 30))

	images := map[string]string{}
	for _, line := range strings.Split(run(t, root, time.Minute, script, "env"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			images[k] = v
		}
	}

	t.Run("python unit tests in the images", func(t *testing.T) {
		for _, img := range []string{"LOCAL_SIMULATOR_IMAGE", "LOCAL_TRAINER_IMAGE", "LOCAL_WEB_IMAGE"} {
			out := run(t, root, 5*time.Minute, "docker", "run", "--rm", "--network", "none", images[img], "python3", "-m", "unittest", "-v")
			t.Logf("%s: %s", img, lastLine(out, "Ran "))
		}
	})

	t.Run("docker stack config", func(t *testing.T) {
		env := append(os.Environ(), "HEARTWOOD_VERSION=test", "PLATFORM_VERSION=test")
		runEnv(t, root, env, time.Minute, "docker", "stack", "config", "-c", "stack/platform.yml")
		for k, v := range images {
			env = append(env, k+"="+v)
		}
		runEnv(t, root, env, time.Minute, "docker", "stack", "config", "-c", "stack/platform.yml", "-c", "stack/local/local.yml")
	})

	var episodes int
	brain := createBrain(t, "cartpole")
	t.Run("train", func(t *testing.T) {
		job := train(t, brain)
		st := waitTrained(t, brain, 3*time.Minute)
		episodes = st.Episodes
		if st.Job != job || episodes < 1 || st.BestReward == nil || *st.BestReward <= 0 {
			t.Fatalf("trained brain = %+v, want job %d with episodes and a best reward", st, job)
		}
		t.Logf("brain %s: job %d trained, %d episodes, best reward %.0f", brain, job, episodes, *st.BestReward)

		q := fmt.Sprintf(`SELECT count("reward") FROM "episode_reward" WHERE "brain" = '%s' AND "job" = '%d'`, brain, job)
		influx := execIn(t, root, "influxdb", "python3", "-c",
			`import sys, json, urllib.request, urllib.parse; print(urllib.request.urlopen("http://127.0.0.1:8086/query?db=platform&q=" + urllib.parse.quote(sys.argv[1]), timeout=10).read().decode())`, q)
		if !strings.Contains(influx, fmt.Sprintf(`,%d]`, episodes)) {
			t.Errorf("InfluxDB has not %d rewards for the job: %s", episodes, influx)
		}
		mongo := execIn(t, root, "mongodb", "python3", "-c",
			`import sys, json, pymongo; d = pymongo.MongoClient("mongodb://127.0.0.1:27017/").platform.policies.find_one({"_id": sys.argv[1]}); print(json.dumps(d))`, brain)
		var doc struct {
			ID      string    `json:"_id"`
			Weights []float64 `json:"weights"`
			Best    float64   `json:"best_reward"`
		}
		if err := json.Unmarshal([]byte(strings.TrimSpace(mongo)), &doc); err != nil || doc.ID != brain || len(doc.Weights) != 4 {
			t.Errorf("policy document in MongoDB (FerretDB) = %q (%v), want the brain's 4 weights", mongo, err)
		}
	})

	t.Run("browser", func(t *testing.T) {
		if episodes == 0 {
			t.Fatal("no trained brain")
		}
		dir := filepath.Join(root, "stack", ".artifacts")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		shot := filepath.Join(dir, "brain-"+brain+".png")
		url := webURL + "/brains/" + brain
		args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir()}
		dom := run(t, root, 3*time.Minute, "chromium", append(args, "--dump-dom", url)...)
		points := regexp.MustCompile(`<circle class="episode"`).FindAllString(dom, -1)
		if len(points) != episodes {
			t.Errorf("graph in the rendered page has %d points, want one per episode (%d)", len(points), episodes)
		}
		if !strings.Contains(dom, `id="reward-graph"`) || !strings.Contains(dom, "trained") {
			t.Errorf("rendered page lacks the graph or the status:\n%s", tail(dom, 20))
		}
		run(t, root, 3*time.Minute, "chromium", append(args, "--window-size=900,700", "--screenshot="+shot, url)...)
		if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
			t.Fatalf("screenshot %s: %v", shot, err)
		}
		t.Logf("screenshot artifact: %s", shot)
	})

	t.Run("consul registrations", func(t *testing.T) {
		for _, name := range platformServices {
			var entries []struct {
				ServiceMeta map[string]string
			}
			getJSON(t, consulURL+"/v1/catalog/service/"+name, &entries)
			ok := false
			for _, e := range entries {
				m := e.ServiceMeta
				if m["managed_by"] == "heartwood" && m["swarm_service"] == stackName+"_"+name && m["swarm_stack"] == stackName {
					ok = true
				}
			}
			if !ok {
				t.Errorf("service %s: no Heartwood registration of Swarm service %s_%s in the stack's Consul: %+v", name, stackName, name, entries)
			}
		}
		answer := run(t, root, time.Minute, "dig", "@127.0.0.1", "-p", "53", "+short", "+time=3", "+tries=2", "web.service.consul")
		if !regexp.MustCompile(`(?m)^\d+\.\d+\.\d+\.\d+$`).MatchString(answer) {
			t.Errorf("dig @127.0.0.1 web.service.consul = %q, want an address", answer)
		}
		t.Logf("dig @127.0.0.1 web.service.consul: %s", strings.TrimSpace(answer))
	})

	t.Run("logs in elasticsearch", func(t *testing.T) {
		for _, svc := range []string{"web", "trainer"} {
			query := fmt.Sprintf(`{"size":1,"query":{"bool":{"filter":[{"match":{"service.name":"%s_%s"}},{"match":{"orchestrator.namespace":"%s"}}]}}}`, stackName, svc, stackName)
			var res struct {
				Hits struct {
					Total struct{ Value int } `json:"total"`
					Hits  []struct {
						Source map[string]any `json:"_source"`
					} `json:"hits"`
				} `json:"hits"`
			}
			deadline := time.Now().Add(2 * time.Minute)
			for {
				postJSON(t, esURL+"/logs-*/_search", query, &res)
				if res.Hits.Total.Value > 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(3 * time.Second)
			}
			if res.Hits.Total.Value == 0 {
				t.Errorf("no log lines of %s_%s with its stack in Elasticsearch", stackName, svc)
				continue
			}
			t.Logf("%s: %d log lines in Elasticsearch", svc, res.Hits.Total.Value)
		}
	})

	t.Run("idle trainer is paused and woken", func(t *testing.T) {
		id := containerOf(t, root, "trainer")
		waitFor(t, 4*time.Minute, "trainer paused by the watchman", func() bool {
			return strings.TrimSpace(run(t, root, time.Minute, "docker", "inspect", "-f", "{{.State.Paused}}", id)) == "true"
		})
		var passing []json.RawMessage
		getJSON(t, consulURL+"/v1/health/service/trainer?passing=true", &passing)
		if len(passing) != 0 {
			t.Errorf("paused trainer still in Consul's passing set: %s", passing)
		}
		woke := time.Now()
		job := train(t, brain)
		st := waitTrained(t, brain, 3*time.Minute)
		if st.Job != job {
			t.Fatalf("after the wake: %+v, want job %d trained", st, job)
		}
		if p := strings.TrimSpace(run(t, root, time.Minute, "docker", "inspect", "-f", "{{.State.Paused}}", id)); p != "false" {
			t.Errorf("trainer paused = %s after training", p)
		}
		t.Logf("paused trainer woken and job %d trained in %s", job, time.Since(woke).Round(time.Millisecond))
		waitFor(t, time.Minute, "trainer back in Consul's passing set", func() bool {
			getJSON(t, consulURL+"/v1/health/service/trainer?passing=true", &passing)
			return len(passing) == 1
		})
	})
}

type brainStatus struct {
	Status     string   `json:"status"`
	Episodes   int      `json:"episodes"`
	BestReward *float64 `json:"best_reward"`
	Job        int      `json:"job"`
}

func createBrain(t *testing.T, name string) string {
	t.Helper()
	var out struct{ ID string }
	code := doJSON(t, http.MethodPost, webURL+"/api/brains", fmt.Sprintf(`{"name":%q}`, name), &out)
	if code != http.StatusCreated || out.ID == "" {
		t.Fatalf("POST /api/brains = %d %+v", code, out)
	}
	return out.ID
}

func train(t *testing.T, brain string) int {
	t.Helper()
	var out struct{ Job int }
	if code := doJSON(t, http.MethodPost, webURL+"/api/brains/"+brain+"/train", "", &out); code != http.StatusAccepted {
		t.Fatalf("POST /api/brains/%s/train = %d", brain, code)
	}
	return out.Job
}

func waitTrained(t *testing.T, brain string, timeout time.Duration) brainStatus {
	t.Helper()
	var st brainStatus
	waitFor(t, timeout, "brain "+brain+" trained", func() bool {
		st = brainStatus{}
		getJSON(t, webURL+"/api/brains/"+brain, &st)
		if st.Status == "failed" {
			t.Fatalf("training failed: %+v", st)
		}
		return st.Status == "trained"
	})
	return st
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Every(time.Second).UntilTrue(t, timeout, what, cond)
}

func containerOf(t *testing.T, root, service string) string {
	t.Helper()
	id := strings.TrimSpace(run(t, root, time.Minute, "docker", "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+stackName+"_"+service))
	if id == "" || strings.Contains(id, "\n") {
		t.Fatalf("want one running container of %s, got %q", service, id)
	}
	return id
}

func execIn(t *testing.T, root, service string, args ...string) string {
	t.Helper()
	return run(t, root, time.Minute, "docker", append([]string{"exec", containerOf(t, root, service)}, args...)...)
}

var client = &http.Client{Timeout: 30 * time.Second}

func doJSON(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	if code := doJSON(t, http.MethodGet, url, "", out); code != http.StatusOK {
		t.Fatalf("GET %s = %d", url, code)
	}
}

func postJSON(t *testing.T, url, body string, out any) {
	t.Helper()
	if code := doJSON(t, http.MethodPost, url, body, out); code != http.StatusOK {
		t.Fatalf("POST %s = %d", url, code)
	}
}

func run(t *testing.T, dir string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	return runEnv(t, dir, nil, timeout, name, args...)
}

func runEnv(t *testing.T, dir string, env []string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	out, err := command(dir, env, timeout, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out, 40))
	}
	return out
}

// runErr runs a command whose failure is reported, not fatal (cleanup).
func runErr(t *testing.T, dir string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	out, err := command(dir, nil, timeout, name, args...)
	if err != nil {
		t.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out, 40))
	}
	return out
}

func command(dir string, env []string, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func lastLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return tail(s, 3)
}
