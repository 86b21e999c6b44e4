package esschema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/heartwood-ops/heartwood/internal/backoff"
	"github.com/heartwood-ops/heartwood/internal/httpclient"
	"github.com/heartwood-ops/heartwood/internal/jsonsubset"
)

// Client sends one request to Elasticsearch and returns the status and
// body of its answer.
type Client interface {
	Do(ctx context.Context, method, path string, body []byte) (status int, resp []byte, err error)
}

// HTTP is a Client over net/http.
type HTTP struct {
	URL string
	// Header adds credentials; nil for none.
	Header func(http.Header)
	Client *http.Client
}

// Do implements Client.
func (h HTTP) Do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	e := httpclient.Endpoint{URL: h.URL, Header: h.Header}
	if h.Client != nil {
		e.Client = h.Client
	}
	a, err := e.Do(ctx, method, path, "application/json", body, 8<<20)
	return a.Status, a.Body, err
}

// DefaultPriority is the index templates' priority: above Elastic's
// built-in logs and metrics templates (100).
const DefaultPriority = 200

// DefaultRetention is how long each kind is kept where the cluster
// supports retention.
func DefaultRetention() map[Kind]time.Duration {
	day := 24 * time.Hour
	return map[Kind]time.Duration{Logs: 30 * day, Decisions: 90 * day, DeadLetters: 30 * day, Metrics: 14 * day}
}

// LogPatterns are the container logs' index patterns for the default
// dataset: logs-<dataset>-*.
func LogPatterns(dataset string) []string { return []string{"logs-" + dataset + "-*"} }

// ErrNotElasticsearch is returned when the server does not answer as
// Elasticsearch does.
var ErrNotElasticsearch = errors.New("not Elasticsearch")

// StatusError is an unexpected answer.
type StatusError struct {
	Op     string
	Status int
	Reason string
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s: %d: %s", e.Op, e.Status, e.Reason) }

// WaitReady polls the cluster's health until it answers (yellow or
// green), ctx ends, or an answer says waiting will not help.
func WaitReady(ctx context.Context, c Client) error {
	b := backoff.New(500*time.Millisecond, 5*time.Second)
	for {
		status, body, err := c.Do(ctx, http.MethodGet, "/_cluster/health?wait_for_status=yellow&timeout=5s", nil)
		switch {
		case err == nil && status == http.StatusOK:
			return nil
		case err == nil && (status == http.StatusUnauthorized || status == http.StatusForbidden):
			return &StatusError{Op: "cluster health", Status: status, Reason: reason(body)}
		case err == nil && !json.Valid(body):
			return fmt.Errorf("%w: cluster health answered %d with a non-JSON body", ErrNotElasticsearch, status)
		}
		last := err
		if last == nil {
			last = &StatusError{Op: "cluster health", Status: status, Reason: reason(body)}
		}
		if werr := b.Wait(ctx); werr != nil {
			return fmt.Errorf("%w (last: %v)", werr, last)
		}
	}
}

// Detect asks the cluster which optional features every node has and
// returns them with a note per feature that is missing.
func Detect(ctx context.Context, c Client) (Features, []string, error) {
	status, body, err := c.Do(ctx, http.MethodGet, "/_nodes?filter_path=nodes.*.version,nodes.*.modules.name", nil)
	if err != nil {
		return Features{}, nil, fmt.Errorf("detect features: %w", err)
	}
	if status != http.StatusOK {
		return Features{}, []string{fmt.Sprintf("cannot read the nodes' modules (%d): using core field types, no retention, no time-series data stream", status)}, nil
	}
	var nodes struct {
		Nodes map[string]struct {
			Version string
			Modules []struct{ Name string }
		}
	}
	if err := json.Unmarshal(body, &nodes); err != nil || len(nodes.Nodes) == 0 {
		return Features{}, nil, fmt.Errorf("detect features: unreadable node info")
	}
	all := func(module string) bool {
		for _, n := range nodes.Nodes {
			if !slices.ContainsFunc(n.Modules, func(m struct{ Name string }) bool { return m.Name == module }) {
				return false
			}
		}
		return true
	}
	minVersion := [2]int{99, 99}
	for _, n := range nodes.Nodes {
		v := parseVersion(n.Version)
		if v[0] < minVersion[0] || v[0] == minVersion[0] && v[1] < minVersion[1] {
			minVersion = v
		}
	}
	atLeast := func(major, minor int) bool {
		return minVersion[0] > major || minVersion[0] == major && minVersion[1] >= minor
	}
	f := Features{
		MapperExtras:    all("mapper-extras"),
		ConstantKeyword: all("constant-keyword"),
		Lifecycle:       all("data-streams") && atLeast(8, 11),
		ILM:             all("x-pack-ilm"),
		TimeSeries:      atLeast(8, 7),
	}
	var notes []string
	if !f.MapperExtras || !f.ConstantKeyword {
		notes = append(notes, "no mapper-extras/constant-keyword modules: using text, float and keyword")
	}
	if !f.Lifecycle && !f.ILM {
		notes = append(notes, "neither data stream lifecycle nor ILM: retention is not set, data is kept until deleted")
	} else if !f.Lifecycle {
		notes = append(notes, "no data stream lifecycle: retention through ILM policies")
	}
	if !f.TimeSeries {
		notes = append(notes, "no time-series data streams (Elasticsearch before 8.7): utilization goes to a plain data stream")
	}
	return f, notes, nil
}

func parseVersion(v string) [2]int {
	parts := strings.SplitN(v, ".", 3)
	var out [2]int
	for i := 0; i < 2 && i < len(parts); i++ {
		out[i], _ = strconv.Atoi(parts[i])
	}
	return out
}

// Change is one object Install created or replaced (or, in a dry run,
// would).
type Change struct {
	Kind, Name string
}

func (c Change) String() string { return c.Kind + " " + c.Name }

// Install puts the ILM policies (where used), component templates and
// index templates that differ from what the cluster holds, in that order,
// and returns what it changed. With dryRun it changes nothing and returns
// what it would change.
func (o Options) Install(ctx context.Context, c Client, dryRun bool) ([]Change, error) {
	type item struct {
		kind, get, put, wrap string
		t                    Template
	}
	keep, err := o.orphans(ctx, c)
	if err != nil {
		return nil, err
	}
	o.KeepStreams = keep
	var items []item
	for _, t := range o.ILMPolicies() {
		items = append(items, item{"ILM policy", "/_ilm/policy/" + t.Name, "/_ilm/policy/" + t.Name, "", t})
	}
	for _, t := range o.ComponentTemplates() {
		items = append(items, item{"component template", "/_component_template/" + t.Name, "/_component_template/" + t.Name, "component_template", t})
	}
	// The logs template goes last: narrowing an earlier, broader one is
	// accepted only once the streams it covered have templates of their own.
	templates := o.IndexTemplates()
	logs := o.IndexTemplateName(Logs)
	slices.SortStableFunc(templates, func(a, b Template) int {
		switch {
		case a.Name == logs && b.Name != logs:
			return 1
		case b.Name == logs && a.Name != logs:
			return -1
		}
		return 0
	})
	for _, t := range templates {
		items = append(items, item{"index template", "/_index_template/" + t.Name, "/_index_template/" + t.Name, "index_template", t})
	}
	var changes []Change
	for _, it := range items {
		same, err := holds(ctx, c, it.get, it.wrap, it.t)
		if err != nil {
			return changes, fmt.Errorf("%s %s: %w", it.kind, it.t.Name, err)
		}
		if same {
			continue
		}
		changes = append(changes, Change{it.kind, it.t.Name})
		if dryRun {
			continue
		}
		status, body, err := c.Do(ctx, http.MethodPut, it.put, it.t.Body)
		if err != nil {
			return changes, fmt.Errorf("%s %s: %w", it.kind, it.t.Name, err)
		}
		if names := orphanedIn(body); status == http.StatusBadRequest && it.t.Name == logs && len(names) > 0 {
			// Narrowing would leave these streams without a template:
			// keep them by name, once.
			o.KeepStreams = append(o.KeepStreams, names...)
			for _, t := range o.IndexTemplates() {
				if t.Name == logs {
					it.t = t
				}
			}
			status, body, err = c.Do(ctx, http.MethodPut, it.put, it.t.Body)
			if err != nil {
				return changes, fmt.Errorf("%s %s: %w", it.kind, it.t.Name, err)
			}
		}
		if status != http.StatusOK {
			return changes, &StatusError{Op: it.kind + " " + it.t.Name, Status: status, Reason: reason(body)}
		}
	}
	retired, err := o.retireLegacy(ctx, c, dryRun)
	return append(changes, retired...), err
}

// retireLegacy takes the dead-letter index template of earlier versions
// out of the way: it ranked above the new templates and would shadow them.
// It runs after the new templates are in place, so that the streams they
// cover can move to them. Elasticsearch refuses to delete a template that
// a data stream still uses (the highest-priority match of one): the
// template is then put below the new ones, where it governs only the
// streams no other template covers (other namespaces' dead letters), and
// is kept for them.
func (o Options) retireLegacy(ctx context.Context, c Client, dryRun bool) ([]Change, error) {
	legacy := o.prefix() + "-" + o.Patterns(DeadLetters)[0][len("logs-"):strings.LastIndex(o.Patterns(DeadLetters)[0], "-")]
	path := "/_index_template/" + legacy
	status, body, err := c.Do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, fmt.Errorf("legacy template %s: %w", legacy, err)
	}
	if status != http.StatusOK || !strings.Contains(string(body), `"managed_by":"heartwood"`) {
		return nil, nil
	}
	var got struct {
		IndexTemplates []struct {
			IndexTemplate map[string]any `json:"index_template"`
		} `json:"index_templates"`
	}
	if err := json.Unmarshal(body, &got); err != nil || len(got.IndexTemplates) != 1 {
		return nil, fmt.Errorf("legacy template %s: unexpected answer %.200q", legacy, body)
	}
	tpl := got.IndexTemplates[0].IndexTemplate
	below := o.Priority - 1
	if p, _ := tpl["priority"].(float64); int(p) == below {
		return nil, nil // kept below the new templates by an earlier run
	}
	removed := []Change{{"removed legacy index template", legacy}}
	if dryRun {
		return removed, nil
	}
	del := func() (inUse bool, err error) {
		status, body, err := c.Do(ctx, http.MethodDelete, path, nil)
		switch {
		case err != nil:
			return false, &StatusError{Op: "DELETE legacy index template " + legacy, Status: status, Reason: err.Error()}
		case status == http.StatusOK || status == http.StatusNotFound:
			return false, nil
		case status == http.StatusBadRequest && strings.Contains(string(body), "in use by"):
			return true, nil
		}
		return false, &StatusError{Op: "DELETE legacy index template " + legacy, Status: status, Reason: reason(body)}
	}
	if inUse, err := del(); err != nil || !inUse {
		return removed, err
	}
	tpl["priority"] = below
	status, body, err = c.Do(ctx, http.MethodPut, path, mustJSON(tpl))
	if err != nil || status != http.StatusOK {
		return nil, &StatusError{Op: "lower legacy index template " + legacy, Status: status, Reason: fmt.Sprint(err, " ", reason(body))}
	}
	// The streams the new templates cover use them now; what is left uses
	// the legacy template only if no other template matches it.
	inUse, err := del()
	if err != nil || !inUse {
		return removed, err
	}
	return []Change{{"kept legacy index template below the new ones, for data streams only it covers", legacy}}, nil
}

// holds reports whether the cluster's object at path already contains t.
func holds(ctx context.Context, c Client, path, wrap string, t Template) (bool, error) {
	status, body, err := c.Do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return false, err
	}
	if status == http.StatusNotFound {
		return false, nil
	}
	if status != http.StatusOK {
		return false, &StatusError{Op: "GET " + path, Status: status, Reason: reason(body)}
	}
	var have any
	if wrap == "" {
		var pols map[string]struct{ Policy any }
		if err := json.Unmarshal(body, &pols); err != nil {
			return false, err
		}
		have = map[string]any{"policy": pols[t.Name].Policy}
	} else {
		var list map[string][]map[string]any
		if err := json.Unmarshal(body, &list); err != nil {
			return false, err
		}
		for _, x := range list[wrap+"s"] {
			if x["name"] == t.Name {
				have = x[wrap]
			}
		}
	}
	var want any
	if err := json.Unmarshal(t.Body, &want); err != nil {
		return false, err
	}
	return jsonsubset.Contains(want, have), nil
}

// reason extracts Elasticsearch's error reason, bounded.
func reason(body []byte) string {
	var e struct {
		Error struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Reason != "" {
		return e.Error.Type + ": " + e.Error.Reason
	}
	return httpclient.Excerpt(string(body), 300)
}

// orphans returns the data streams that the logs index template manages
// today but that none of Heartwood's patterns would cover after this
// install (an earlier version claimed broader patterns).
func (o Options) orphans(ctx context.Context, c Client) ([]string, error) {
	status, body, err := c.Do(ctx, http.MethodGet, "/_data_stream/*?expand_wildcards=all&filter_path=data_streams.name,data_streams.template", nil)
	if err != nil {
		return nil, fmt.Errorf("list data streams: %w", err)
	}
	if status != http.StatusOK {
		// Clusters without the data stream API (e.g. a minimal build):
		// keep the streams an earlier install kept by name, and Install
		// learns new ones from Elasticsearch's refusal.
		return o.keptBefore(ctx, c)
	}
	var list struct {
		DataStreams []struct{ Name, Template string } `json:"data_streams"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("list data streams: %w", err)
	}
	var patterns []string
	for _, k := range Kinds {
		if k == Logs {
			patterns = append(patterns, o.LogPatterns...)
			continue
		}
		patterns = append(patterns, o.Patterns(k)...)
	}
	logs := o.IndexTemplateName(Logs)
	var out []string
	for _, ds := range list.DataStreams {
		if ds.Template != logs || slices.ContainsFunc(patterns, func(p string) bool { return globMatch(p, ds.Name) }) {
			continue
		}
		out = append(out, ds.Name)
	}
	slices.Sort(out)
	return out, nil
}

// globMatch matches name against an index pattern in which only '*' is
// special (any run of characters), as Elasticsearch's simple match does.
func globMatch(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(name, p)
		if i < 0 {
			return false
		}
		name = name[i+len(p):]
	}
	return strings.HasSuffix(name, parts[len(parts)-1])
}

// orphanedIn returns the data streams Elasticsearch names when it refuses a
// template because they would "no longer match a data stream template".
func orphanedIn(body []byte) []string {
	const marker = "would cause data streams ["
	r := reason(body)
	i := strings.Index(r, marker)
	if i < 0 || !strings.Contains(r, "no longer match") {
		return nil
	}
	rest := r[i+len(marker):]
	j := strings.Index(rest, "]")
	if j < 0 {
		return nil
	}
	var out []string
	for _, n := range strings.Split(rest[:j], ",") {
		if n = strings.TrimSpace(n); n != "" && !strings.ContainsAny(n, "*, \"") {
			out = append(out, n)
		}
	}
	return out
}

// keptBefore returns the exact stream names (patterns without '*') that the
// cluster's logs template holds beyond the configured patterns.
func (o Options) keptBefore(ctx context.Context, c Client) ([]string, error) {
	status, body, err := c.Do(ctx, http.MethodGet, "/_index_template/"+o.IndexTemplateName(Logs), nil)
	if err != nil {
		return nil, fmt.Errorf("read the logs template: %w", err)
	}
	if status != http.StatusOK {
		return nil, nil
	}
	var list struct {
		IndexTemplates []struct {
			IndexTemplate struct {
				IndexPatterns []string `json:"index_patterns"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("read the logs template: %w", err)
	}
	var out []string
	for _, t := range list.IndexTemplates {
		for _, p := range t.IndexTemplate.IndexPatterns {
			if !strings.Contains(p, "*") && !slices.Contains(o.LogPatterns, p) {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
