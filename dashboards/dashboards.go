// Package dashboards holds what SREs see of Heartwood outside the agent:
// Kibana saved objects (data views over the logs and utilization data
// streams, saved searches, Lens visualizations and three dashboards: Logs,
// Utilization and idle pausing, Heartwood health) and Prometheus alert
// rules over the agent's metrics, with the code that installs them.
//
// The index templates are not here: the shipper installs its own at start,
// so they always match the documents it writes.
package dashboards

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
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
		PanelsJSON   string          `json:"panelsJSON"`
		ControlGroup *controlGroup   `json:"controlGroupInput"`
		State        json.RawMessage `json:"state"`
	} `json:"attributes"`
	References []Reference `json:"references"`
}

// Reference is a saved object's reference to another one.
type Reference struct {
	Name string `json:"name"`
	Type string `json:"type"`
	ID   string `json:"id"`
}

type controlGroup struct {
	PanelsJSON string `json:"panelsJSON"`
}

// Panel is one entry of a dashboard's panelsJSON.
type Panel struct {
	Type         string `json:"type"`
	PanelIndex   string `json:"panelIndex"`
	PanelRefName string `json:"panelRefName"`
	GridData     struct {
		X, Y, W, H int
		I          string `json:"i"`
	} `json:"gridData"`
}

// lensState is the part of a Lens state that names fields.
type lensState struct {
	Query           kqlQuery `json:"query"`
	DatasourceState struct {
		FormBased struct {
			Layers map[string]struct {
				Columns map[string]struct {
					SourceField string    `json:"sourceField"`
					Filter      *kqlQuery `json:"filter"`
					Params      struct {
						SortField string `json:"sortField"`
					} `json:"params"`
				} `json:"columns"`
			} `json:"layers"`
		} `json:"formBased"`
	} `json:"datasourceStates"`
}

type kqlQuery struct {
	Query    string `json:"query"`
	Language string `json:"language"`
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

func queryFields(q string, add func(string)) {
	for _, m := range fieldInQuery.FindAllStringSubmatch(q, -1) {
		add(m[1])
	}
}

// Fields returns every document field the saved searches show or query,
// sorted.
func Fields(objs []SavedObject) []string {
	set := map[string]bool{}
	for _, o := range objs {
		if o.Type == "search" {
			o.fields(func(f string) { set[f] = true })
		}
	}
	return sortedKeys(set)
}

// UsedFields returns, per data view id, every document field that the
// objects over it show, query, aggregate or filter on: saved-search
// columns and queries, Lens columns, queries and filters, and dashboard
// controls.
func UsedFields(objs []SavedObject) (map[string][]string, error) {
	sets := map[string]map[string]bool{}
	for _, o := range objs {
		var err error
		for _, r := range o.References {
			if r.Type != "index-pattern" {
				continue
			}
			if sets[r.ID] == nil {
				sets[r.ID] = map[string]bool{}
			}
			set := sets[r.ID]
			add := func(f string) { set[f] = true }
			switch {
			case o.Type == "dashboard" && strings.HasPrefix(r.Name, "controlGroup_"):
				id := strings.TrimSuffix(strings.TrimPrefix(r.Name, "controlGroup_"), ":optionsListDataView")
				var f string
				f, err = o.controlField(id)
				add(f)
			case o.Type != "dashboard":
				err = o.fieldsErr(add)
			}
			if err != nil {
				return nil, fmt.Errorf("%s/%s: %w", o.Type, o.ID, err)
			}
		}
	}
	out := map[string][]string{}
	for v, set := range sets {
		out[v] = sortedKeys(set)
	}
	return out, nil
}

func (o SavedObject) fields(add func(string)) { _ = o.fieldsErr(add) }

func (o SavedObject) fieldsErr(add func(string)) error {
	switch o.Type {
	case "search":
		for _, c := range o.Attributes.Columns {
			add(c)
		}
		var src struct {
			Query kqlQuery `json:"query"`
		}
		if err := json.Unmarshal([]byte(o.Attributes.Meta.SearchSourceJSON), &src); err != nil {
			return fmt.Errorf("searchSourceJSON: %w", err)
		}
		queryFields(src.Query.Query, add)
	case "lens":
		var st lensState
		if err := json.Unmarshal(o.Attributes.State, &st); err != nil {
			return fmt.Errorf("lens state: %w", err)
		}
		queryFields(st.Query.Query, add)
		for _, l := range st.DatasourceState.FormBased.Layers {
			for _, c := range l.Columns {
				if c.SourceField != "" && c.SourceField != "___records___" {
					add(c.SourceField)
				}
				if c.Params.SortField != "" {
					add(c.Params.SortField)
				}
				if c.Filter != nil {
					queryFields(c.Filter.Query, add)
				}
			}
		}
	}
	return nil
}

func (o SavedObject) controlField(id string) (string, error) {
	if o.Attributes.ControlGroup == nil {
		return "", fmt.Errorf("control %s referenced but the dashboard has no controls", id)
	}
	var panels map[string]struct {
		ExplicitInput struct {
			FieldName string `json:"fieldName"`
		} `json:"explicitInput"`
	}
	if err := json.Unmarshal([]byte(o.Attributes.ControlGroup.PanelsJSON), &panels); err != nil {
		return "", fmt.Errorf("controlGroupInput.panelsJSON: %w", err)
	}
	p, ok := panels[id]
	if !ok || p.ExplicitInput.FieldName == "" {
		return "", fmt.Errorf("control %s has no field", id)
	}
	return p.ExplicitInput.FieldName, nil
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// Panels returns a dashboard's panels.
func (o SavedObject) Panels() ([]Panel, error) {
	if o.Attributes.PanelsJSON == "" {
		return nil, nil
	}
	var ps []Panel
	if err := json.Unmarshal([]byte(o.Attributes.PanelsJSON), &ps); err != nil {
		return nil, fmt.Errorf("%s/%s: panelsJSON: %w", o.Type, o.ID, err)
	}
	return ps, nil
}

// gridColumns is the width of Kibana's dashboard grid.
const gridColumns = 48

// CheckLayout reports dashboard panels that overlap, fall outside the
// 48-column grid or have no size.
func CheckLayout(objs []SavedObject) error {
	var errs []string
	for _, o := range objs {
		if o.Type != "dashboard" {
			continue
		}
		ps, err := o.Panels()
		if err != nil {
			return err
		}
		for i, p := range ps {
			g := p.GridData
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > gridColumns {
				errs = append(errs, fmt.Sprintf("%s: panel %s at x=%d y=%d w=%d h=%d is outside the %d-column grid", o.ID, p.PanelIndex, g.X, g.Y, g.W, g.H, gridColumns))
			}
			for _, q := range ps[:i] {
				h := q.GridData
				if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
					errs = append(errs, fmt.Sprintf("%s: panels %s and %s overlap", o.ID, q.PanelIndex, p.PanelIndex))
				}
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// CheckReferences reports references to objects that are not in objs, and
// names used inside an object (a dashboard's panelRefName, a search's
// indexRefName, a Lens layer) that its references do not define.
func CheckReferences(objs []SavedObject) error {
	have := map[string]bool{}
	for _, o := range objs {
		have[o.Type+"/"+o.ID] = true
	}
	var missing []string
	for _, o := range objs {
		names := map[string]bool{}
		for _, r := range o.References {
			names[r.Name] = true
			if !have[r.Type+"/"+r.ID] {
				missing = append(missing, fmt.Sprintf("%s/%s -> %s/%s", o.Type, o.ID, r.Type, r.ID))
			}
		}
		need := func(name string) {
			if !names[name] {
				missing = append(missing, fmt.Sprintf("%s/%s uses reference %q it does not define", o.Type, o.ID, name))
			}
		}
		switch o.Type {
		case "dashboard":
			ps, err := o.Panels()
			if err != nil {
				return err
			}
			for _, p := range ps {
				need(p.PanelIndex + ":" + p.PanelRefName)
			}
		case "search":
			var src struct {
				IndexRefName string `json:"indexRefName"`
			}
			if err := json.Unmarshal([]byte(o.Attributes.Meta.SearchSourceJSON), &src); err != nil {
				return fmt.Errorf("%s/%s: searchSourceJSON: %w", o.Type, o.ID, err)
			}
			need(src.IndexRefName)
		case "lens":
			var st lensState
			if err := json.Unmarshal(o.Attributes.State, &st); err != nil {
				return fmt.Errorf("%s/%s: lens state: %w", o.Type, o.ID, err)
			}
			for id := range st.DatasourceState.FormBased.Layers {
				need("indexpattern-datasource-layer-" + id)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("dangling references: %s", strings.Join(missing, ", "))
	}
	return nil
}
