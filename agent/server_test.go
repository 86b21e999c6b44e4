package agent

import (
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestServerLimits(t *testing.T) {
	srv := newServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout,
		"WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout,
	} {
		if d <= 0 || d > 5*time.Minute {
			t.Errorf("%s = %s, want a bound between 0 and 5m", name, d)
		}
	}
	// A pause or wake may take up to two minutes: the write timeout must
	// let its answer through.
	if srv.WriteTimeout <= 2*time.Minute {
		t.Errorf("WriteTimeout = %s, shorter than a pause may take", srv.WriteTimeout)
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20 {
		t.Errorf("MaxHeaderBytes = %d, want a limit below 1MiB", srv.MaxHeaderBytes)
	}
}

func TestServerRefusesHugeHeaders(t *testing.T) {
	srv := newServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 200<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("200KiB header: status %d, want 431", resp.StatusCode)
	}
}

func TestESClientReadsSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeTestFile(t, dir, name, content) }
	got := make(chan string, 1)
	es := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"version":{"number":"8.12.0"}}`)
	}))
	defer es.Close()
	tests := []struct {
		desc string
		core func(c *Core)
		want string
	}{
		{"password file", func(c *Core) { c.ESUsername, c.ESPasswordFile = "elastic", write("pw", "  s3cret-pw\n") },
			"Basic " + base64.StdEncoding.EncodeToString([]byte("elastic:s3cret-pw"))},
		{"API key file", func(c *Core) { c.ESAPIKeyFile = write("key", "a2V5OnZhbHVl\n") }, "APIKey a2V5OnZhbHVl"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			c := DefaultCore()
			c.ESURL = []string{es.URL}
			tc.core(&c)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			client, err := newESClient(c)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Info()
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if a := <-got; a != tc.want {
				t.Errorf("Authorization = %q, want %q", a, tc.want)
			}
		})
	}
	c := DefaultCore()
	c.ESUsername, c.ESPasswordFile = "elastic", write("empty", "\n")
	if _, err := newESClient(c); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty password file: err = %v, want it refused", err)
	}
}

func TestErrorsNameTheSubsystemOnce(t *testing.T) {
	tests := []struct{ err, want string }{
		{"registrar: deps.Consul is nil", "registrar: deps.Consul is nil"},
		{"registrar.ip: must be an IP address", "registrar.ip: must be an IP address"},
		{"node name is empty", "registrar: node name is empty"},
	}
	for _, tc := range tests {
		if got := named("registrar", errors.New(tc.err)).Error(); got != tc.want {
			t.Errorf("named(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
