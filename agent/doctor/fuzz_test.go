package doctor

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

type cannedDoer struct {
	status int
	ctype  string
	body   []byte
}

func (c cannedDoer) Do(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: c.status, Header: http.Header{"Content-Type": {c.ctype},
		"X-Elastic-Product": {"Elasticsearch"}, "Date": {time.Now().UTC().Format(http.TimeFormat)}},
		Body: io.NopCloser(bytes.NewReader(c.body))}, nil
}

// FuzzRemoteChecks: whatever Consul, Elasticsearch or Kibana answer, the
// checks return a one-line result and never panic.
func FuzzRemoteChecks(f *testing.F) {
	f.Add(200, "application/json", []byte(`{"AccessorID":"x"}`))
	// Kibana's answers are fuzzed with the Kibana client in dashboards.
	f.Add(200, "application/json", []byte(`[{"Allow":true},{"Allow":false}]`))
	f.Add(200, "application/json", []byte(`{"username":"u","has_all_requested":false,"cluster":{"a":false},"index":{"i":{"p":false}}}`))
	f.Add(200, "application/json", []byte(`{"nodes":{"x":{"version":"8.1","timestamp":1}}}`))
	f.Add(401, "text/plain", []byte("ACL support disabled"))
	f.Add(200, "text/html", []byte("<html>x</html>"))
	f.Fuzz(func(t *testing.T, status int, ctype string, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		e := Endpoint{URL: "http://x.invalid", Client: cannedDoer{status, ctype, body}}
		for _, c := range []Check{
			Consul(e, "tok", "n"), Elasticsearch(e, []string{"logs-a-b"}),
			Clock(time.Now, DateHeader("consul", e, "/"), ESNodeTime(e)),
		} {
			r := c.Run(context.Background())
			if r.Status < OK || r.Status > Fail {
				t.Fatalf("%s: status %d", c.Name, r.Status)
			}
		}
	})
}
