package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/heartwood-ops/heartwood/internal/httpclient"
)

// Doer sends HTTP requests; *http.Client is one.
type Doer = httpclient.Doer

// Endpoint is a service's base URL with its credentials and client.
type Endpoint = httpclient.Endpoint

// reply is a bounded HTTP answer.
type reply struct{ httpclient.Answer }

// json reports whether the answer is JSON.
func (r reply) json() bool {
	mt := r.MediaType()
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// text is the answer for a report: JSON or plain text, never an HTML
// page.
func (r reply) text() string {
	if r.json() || strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		return oneLine(string(r.Body))
	}
	return fmt.Sprintf("(%d bytes of %s)", len(r.Body), r.Header.Get("Content-Type"))
}

// do sends method path to e with body, if not nil, as JSON, and reads at
// most 1 MiB of the answer.
func do(ctx context.Context, e Endpoint, method, path string, body any) (reply, error) {
	var b []byte
	ctype := ""
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return reply{}, err
		}
		ctype = "application/json"
	}
	a, err := e.Do(ctx, method, path, ctype, b, 1<<20)
	return reply{a}, err
}

// Consul checks that the local Consul agent answers and that the token may
// do what the registrar does on this node: agent:read, node:read and
// service:write. With ACLs off there is nothing to check beyond reaching
// it.
func Consul(e Endpoint, token, node string) Check {
	if token != "" {
		prev := e.Header
		e.Header = func(h http.Header) {
			if prev != nil {
				prev(h)
			}
			h.Set("X-Consul-Token", token)
		}
	}
	return Check{Name: "consul", Run: func(ctx context.Context) Result {
		r, err := do(ctx, e, http.MethodGet, "/v1/acl/token/self", nil)
		if err != nil {
			return fail("start the local Consul agent or set --consul-addr", "%s: %v", e.URL, err)
		}
		switch {
		case r.Status == http.StatusUnauthorized && strings.Contains(string(r.Body), "ACL support disabled"):
			a, err := do(ctx, e, http.MethodGet, "/v1/agent/self", nil)
			if err != nil || a.Status != http.StatusOK {
				return fail("check the local Consul agent's health", "%s: /v1/agent/self: %s", e.URL, errOrStatus(err, a))
			}
			return ok("%s: reachable, ACLs disabled", e.URL)
		case r.Status == http.StatusForbidden || r.Status == http.StatusUnauthorized:
			return fail("give the agent a valid token (--consul-token, --consul-token-file or $CONSUL_HTTP_TOKEN)",
				"%s: token rejected: %s", e.URL, r.text())
		case r.Status != http.StatusOK:
			return fail("check that --consul-addr is the Consul agent's HTTP API", "%s: /v1/acl/token/self: %d %s", e.URL, r.Status, r.text())
		}
		var self struct {
			AccessorID  string `json:"AccessorID"`
			Description string `json:"Description"`
		}
		if err := json.Unmarshal(r.Body, &self); err != nil {
			return fail("check that --consul-addr is the Consul agent's HTTP API", "%s: unreadable token: %v", e.URL, err)
		}
		want := []struct{ Resource, Segment, Access string }{
			{"agent", node, "read"}, {"node", node, "read"}, {"service", "heartwood-doctor-probe", "write"},
		}
		a, err := do(ctx, e, http.MethodPost, "/v1/internal/acl/authorize", want)
		if err != nil {
			return fail("check the local Consul agent's health", "%s: %v", e.URL, err)
		}
		if a.Status != http.StatusOK {
			return warn("check the token's policies by hand: agent:read and node:read on this node, service:write",
				"%s: token %s valid; its permissions cannot be checked here (%d)", e.URL, short(self.AccessorID), a.Status)
		}
		var allowed []struct{ Allow bool }
		if err := json.Unmarshal(a.Body, &allowed); err != nil || len(allowed) != len(want) {
			return warn("check the token's policies by hand: agent:read and node:read on this node, service:write",
				"%s: unreadable authorization answer", e.URL)
		}
		var missing []string
		for i, w := range want {
			if !allowed[i].Allow {
				what := w.Resource + ":" + w.Access
				if w.Resource != "service" {
					what += " on node " + node
				}
				missing = append(missing, what)
			}
		}
		if len(missing) > 0 {
			return fail("add a policy to the token granting "+strings.Join(missing, ", "),
				"%s: token %s lacks %s", e.URL, short(self.AccessorID), strings.Join(missing, ", "))
		}
		return ok("%s: token %s may read the agent and node %s and write services", e.URL, short(self.AccessorID), node)
	}}
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}

func errOrStatus(err error, r reply) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d %s", r.Status, r.text())
}

// Elasticsearch checks that the cluster answers as Elasticsearch and,
// where security is on, that the credentials may create Heartwood's data
// streams' documents (create_doc, auto_configure on streams) and install
// its templates (manage_index_templates, monitor).
func Elasticsearch(e Endpoint, streams []string) Check {
	credFix := "set --es-api-key or --es-username/--es-password (or their HEARTWOOD_ environment variables)"
	return Check{Name: "elasticsearch", Run: func(ctx context.Context) Result {
		r, err := do(ctx, e, http.MethodGet, "/_nodes/_local?filter_path=nodes.*.version", nil)
		if err != nil {
			return fail("start Elasticsearch or set --es-url", "%s: %v", e.URL, err)
		}
		if r.Status == http.StatusUnauthorized {
			return fail(credFix, "%s: credentials rejected (401)", e.URL)
		}
		if r.Header.Get("X-Elastic-Product") != "Elasticsearch" {
			return fail("point --es-url at Elasticsearch", "%s: %d, not Elasticsearch: %s", e.URL, r.Status, r.text())
		}
		version := "version unknown (no monitor privilege)"
		var nodes struct {
			Nodes map[string]struct{ Version string } `json:"nodes"`
		}
		if r.Status == http.StatusOK && json.Unmarshal(r.Body, &nodes) == nil {
			for _, n := range nodes.Nodes {
				version = "Elasticsearch " + n.Version
			}
		}
		body := map[string]any{
			"cluster": []string{"monitor", "manage_index_templates"},
			"index":   []any{map[string]any{"names": streams, "privileges": []string{"create_doc", "auto_configure"}}},
		}
		p, err := do(ctx, e, http.MethodPost, "/_security/user/_has_privileges", body)
		if err != nil {
			return fail("check Elasticsearch's health", "%s: %v", e.URL, err)
		}
		if securityOff(p) {
			return ok("%s: %s, security off", e.URL, version)
		}
		if p.Status == http.StatusUnauthorized {
			return fail(credFix, "%s: credentials rejected (401)", e.URL)
		}
		if p.Status != http.StatusOK {
			return fail("check Elasticsearch's health", "%s: _has_privileges: %d %s", e.URL, p.Status, p.text())
		}
		var hp struct {
			Username string                     `json:"username"`
			All      bool                       `json:"has_all_requested"`
			Cluster  map[string]bool            `json:"cluster"`
			Index    map[string]map[string]bool `json:"index"`
		}
		if err := json.Unmarshal(p.Body, &hp); err != nil {
			return fail("check Elasticsearch's health", "%s: unreadable _has_privileges answer: %v", e.URL, err)
		}
		if hp.All {
			return ok("%s: %s, user %s may write %s", e.URL, version, hp.Username, strings.Join(streams, ", "))
		}
		var missing []string
		for _, c := range sortedTrue(hp.Cluster, false) {
			missing = append(missing, "cluster:"+c)
		}
		for _, idx := range sortedKeys(hp.Index) {
			for _, priv := range sortedTrue(hp.Index[idx], false) {
				missing = append(missing, idx+":"+priv)
			}
		}
		return fail("grant the agent's role "+strings.Join(missing, ", "),
			"%s: %s, user %s lacks %s", e.URL, version, hp.Username, strings.Join(missing, ", "))
	}}
}

// securityOff reports whether an answer of a security API says that
// security is disabled or not installed.
func securityOff(r reply) bool {
	b := strings.ToLower(string(r.Body))
	switch {
	case r.Status == http.StatusBadRequest && strings.Contains(b, "no handler found"):
		return true // the security plugin is not installed
	case strings.Contains(b, "security must be explicitly enabled"), strings.Contains(b, "security is not enabled"):
		return true
	}
	return false
}

// KibanaStatus is the part of a Kibana client the Kibana check uses:
// Kibana's version once it is available. Errors that carry an HTTP status
// have a HTTPStatus method.
type KibanaStatus interface {
	Version(ctx context.Context) (string, error)
}

// Kibana checks that Kibana at url answers its status API as available. An
// empty url skips the check.
func Kibana(url string, k KibanaStatus) Check {
	return Check{Name: "kibana", Run: func(ctx context.Context) Result {
		if url == "" {
			return Result{Status: Skipped, Detail: "not configured (--kibana-url)"}
		}
		v, err := k.Version(ctx)
		var se interface{ HTTPStatus() int }
		switch {
		case err == nil:
			return ok("%s: Kibana %s, available", url, v)
		case errors.As(err, &se) && (se.HTTPStatus() == http.StatusUnauthorized || se.HTTPStatus() == http.StatusForbidden):
			return fail("set --kibana-api-key or --kibana-username/--kibana-password", "%s: %v", url, err)
		case v != "":
			return fail("check Kibana's health", "%s: %v", url, err)
		}
		return fail("start Kibana or point --kibana-url at it (with /s/<space> for a space)", "%s: %v", url, err)
	}}
}

// MaxClockSkew is the largest difference from a server's clock the clock
// check accepts.
const MaxClockSkew = 5 * time.Second

// TimeSource reads a server's clock: the time it reports and the
// resolution of that report.
type TimeSource struct {
	Name  string
	Fetch func(ctx context.Context) (t time.Time, resolution time.Duration, err error)
}

// DateHeader reads a server's clock from the Date header of an answer to
// GET path (Consul sends one; one-second resolution).
func DateHeader(name string, e Endpoint, path string) TimeSource {
	return TimeSource{Name: name, Fetch: func(ctx context.Context) (time.Time, time.Duration, error) {
		r, err := do(ctx, e, http.MethodGet, path, nil)
		if err != nil {
			return time.Time{}, 0, err
		}
		d, err := http.ParseTime(r.Header.Get("Date"))
		if err != nil {
			return time.Time{}, 0, fmt.Errorf("no Date header")
		}
		return d.Add(500 * time.Millisecond), time.Second, nil // middle of the second
	}}
}

// ESNodeTime reads Elasticsearch's clock from its node stats timestamp
// (milliseconds; Elasticsearch sends no Date header).
func ESNodeTime(e Endpoint) TimeSource {
	return TimeSource{Name: "elasticsearch", Fetch: func(ctx context.Context) (time.Time, time.Duration, error) {
		r, err := do(ctx, e, http.MethodGet, "/_nodes/_local/stats/os?filter_path=nodes.*.timestamp", nil)
		if err != nil {
			return time.Time{}, 0, err
		}
		var st struct {
			Nodes map[string]struct{ Timestamp int64 } `json:"nodes"`
		}
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &st) != nil {
			return time.Time{}, 0, fmt.Errorf("node stats: %d", r.Status)
		}
		for _, n := range st.Nodes {
			return time.UnixMilli(n.Timestamp), time.Millisecond, nil
		}
		return time.Time{}, 0, fmt.Errorf("node stats: no node")
	}}
}

// Clock compares this node's clock (now) with the servers'.
func Clock(now func() time.Time, sources ...TimeSource) Check {
	return Check{Name: "clock", Run: func(ctx context.Context) Result {
		var parts []string
		worst := time.Duration(0)
		for _, s := range sources {
			sent := now()
			t, res, err := s.Fetch(ctx)
			if err != nil {
				continue // the service's own check reports it
			}
			got := now()
			skew := t.Sub(sent.Add(got.Sub(sent) / 2))
			// Within the round trip and the report's resolution, the
			// clocks agree.
			if slack := got.Sub(sent)/2 + res/2; abs(skew) <= slack {
				skew = 0
			}
			if abs(skew) > abs(worst) {
				worst = skew
			}
			parts = append(parts, fmt.Sprintf("%s %+.1fs", s.Name, skew.Seconds()))
		}
		if len(parts) == 0 {
			return Result{Status: Skipped, Detail: "no server answered with its time"}
		}
		if abs(worst) > MaxClockSkew {
			return fail("synchronise this node's clock (chrony or systemd-timesyncd)",
				"differs from %s (more than %s)", strings.Join(parts, ", "), MaxClockSkew)
		}
		return ok("within %s of %s", MaxClockSkew, strings.Join(parts, ", "))
	}}
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
