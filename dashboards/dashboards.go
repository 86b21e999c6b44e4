// Package dashboards holds what SREs see of Heartwood outside the agent:
// Kibana saved objects (a data view over the logs data streams, saved
// searches for errors, watchman decisions, dead letters and log gaps, and an
// overview dashboard) and Prometheus alert rules over the agent's metrics,
// with the code that installs them.
//
// The index templates are not here: the shipper installs its own at start,
// so they always match the documents it writes.
package dashboards

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

//go:embed kibana/heartwood.ndjson
var kibanaObjects []byte

//go:embed alerts/heartwood.rules.yml
var alertRules []byte

// KibanaObjects returns the saved objects as NDJSON, the format of Kibana's
// saved objects import API and of Stack Management's import dialog.
func KibanaObjects() []byte { return bytes.Clone(kibanaObjects) }

// AlertRules returns the Prometheus alerting rules file.
func AlertRules() []byte { return bytes.Clone(alertRules) }

// SavedObject is the part of a Kibana saved object the checks read.
type SavedObject struct {
	Type       string `json:"type"`
	ID         string `json:"id"`
	Attributes struct {
		Title   string   `json:"title"`
		Columns []string `json:"columns"`
		Meta    struct {
			SearchSourceJSON string `json:"searchSourceJSON"`
		} `json:"kibanaSavedObjectMeta"`
	} `json:"attributes"`
	References []struct {
		Name string `json:"name"`
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"references"`
}

// ParseObjects parses NDJSON saved objects.
func ParseObjects(ndjson []byte) ([]SavedObject, error) {
	var out []SavedObject
	sc := bufio.NewScanner(bytes.NewReader(ndjson))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var o SavedObject
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			return nil, fmt.Errorf("saved object on line %d: %w", line, err)
		}
		if o.Type == "" || o.ID == "" {
			return nil, fmt.Errorf("saved object on line %d: type and id are required", line)
		}
		out = append(out, o)
	}
	return out, sc.Err()
}

// fieldInQuery matches `field.name:` in a KQL query.
var fieldInQuery = regexp.MustCompile(`([a-z_@][a-z0-9_.@]*)\s*:`)

// Fields returns every document field the saved searches show or query,
// sorted; the tests check each against the documents the shipper writes.
func Fields(objs []SavedObject) []string {
	set := map[string]bool{}
	for _, o := range objs {
		if o.Type != "search" {
			continue
		}
		for _, c := range o.Attributes.Columns {
			set[c] = true
		}
		var src struct {
			Query struct {
				Query string `json:"query"`
			} `json:"query"`
		}
		if json.Unmarshal([]byte(o.Attributes.Meta.SearchSourceJSON), &src) == nil {
			for _, m := range fieldInQuery.FindAllStringSubmatch(src.Query.Query, -1) {
				set[m[1]] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// CheckReferences reports references to objects that are not in objs.
func CheckReferences(objs []SavedObject) error {
	have := map[string]bool{}
	for _, o := range objs {
		have[o.Type+"/"+o.ID] = true
	}
	var missing []string
	for _, o := range objs {
		for _, r := range o.References {
			if !have[r.Type+"/"+r.ID] {
				missing = append(missing, fmt.Sprintf("%s/%s -> %s/%s", o.Type, o.ID, r.Type, r.ID))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("dangling references: %s", strings.Join(missing, ", "))
	}
	return nil
}
