package api

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/heartwood-ops/heartwood/config"
	"github.com/heartwood-ops/heartwood/inventory"
)

// ContainerView is one container as the read endpoints show it: an explicit
// selection of the inventory's fields. The environment, the health-check
// command, the log options and labels the agent does not act on are left
// out, because containers keep credentials in all of them.
type ContainerView struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Image    string    `json:"image"`
	ImageID  string    `json:"image_id"`
	Created  time.Time `json:"created"`
	Hostname string    `json:"hostname,omitempty"`
	// Labels holds only the SERVICE_* and heartwood.* labels, with check
	// headers, scripts and URL credentials redacted.
	Labels      map[string]string   `json:"labels,omitempty"`
	State       inventory.State     `json:"state"`
	Ports       []inventory.Port    `json:"ports,omitempty"`
	Networks    []inventory.Network `json:"networks,omitempty"`
	NetworkMode string              `json:"network_mode,omitempty"`
	// Healthcheck says whether the container has a Docker HEALTHCHECK; its
	// command is not shown.
	Healthcheck  bool                 `json:"healthcheck"`
	LogDriver    string               `json:"log_driver,omitempty"`
	RestartCount int                  `json:"restart_count"`
	Swarm        *inventory.SwarmTask `json:"swarm,omitempty"`
	// Subsystems holds each enabled subsystem's view, by name.
	Subsystems map[string]any `json:"subsystems,omitempty"`
}

// newContainerView selects the fields of c that the API may show.
func newContainerView(c *inventory.Container) ContainerView {
	return ContainerView{
		ID: c.ID, Name: c.Name, Image: c.Image, ImageID: c.ImageID,
		Created: c.Created, Hostname: c.Hostname,
		Labels:      PublicLabels(c.Labels),
		State:       c.State,
		Ports:       c.Ports,
		Networks:    c.Networks,
		NetworkMode: c.NetworkMode,
		Healthcheck: c.Healthcheck != nil,
		LogDriver:   c.LogDriver, RestartCount: c.RestartCount,
		Swarm: c.Swarm,
	}
}

// Redacted replaces a secret value.
const Redacted = "[redacted]"

// PublicLabels returns the labels the API may show: the SERVICE_* and
// heartwood.* keys the agent acts on, with secrets in their values
// redacted. Every other label is dropped.
func PublicLabels(labels map[string]string) map[string]string {
	var out map[string]string
	for k, v := range labels {
		if !strings.HasPrefix(k, "SERVICE_") && !strings.HasPrefix(k, "heartwood.") {
			continue
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[k] = redactLabel(k, v)
	}
	return out
}

// redactLabel returns v with the secrets a label of this key may carry
// removed.
func redactLabel(key, v string) string {
	k := strings.ToUpper(key)
	switch {
	case strings.HasSuffix(k, "_SCRIPT"), strings.HasSuffix(k, "_CMD"), strings.HasSuffix(k, "_ARGS"),
		strings.Contains(k, "HEADER"), strings.Contains(k, "TOKEN"), strings.Contains(k, "PASSWORD"),
		strings.Contains(k, "SECRET"), strings.Contains(k, "AUTH"):
		if v == "" {
			return v
		}
		return Redacted
	case strings.HasSuffix(k, "_CHECKS"):
		return redactChecks(v)
	}
	return redactURLs(v)
}

// redactChecks redacts a SERVICE_CHECKS value: a JSON check definition or a
// list of them. Header values, script arguments and URL credentials go;
// a value that is not valid JSON is redacted whole.
func redactChecks(v string) string {
	var doc any
	if err := json.Unmarshal([]byte(v), &doc); err != nil {
		return Redacted
	}
	out, err := json.Marshal(redactJSON(doc))
	if err != nil {
		return Redacted
	}
	return string(out)
}

func redactJSON(doc any) any {
	switch d := doc.(type) {
	case []any:
		for i := range d {
			d[i] = redactJSON(d[i])
		}
		return d
	case map[string]any:
		for k, val := range d {
			switch strings.ToLower(k) {
			case "header", "headers":
				if hs, ok := val.(map[string]any); ok {
					for name := range hs {
						hs[name] = []any{Redacted}
					}
					continue
				}
				d[k] = Redacted
			case "args", "script", "scriptargs", "script_args", "body", "token", "password":
				d[k] = Redacted
			default:
				d[k] = redactJSON(val)
			}
		}
		return d
	case string:
		return redactURLs(d)
	}
	return doc
}

// redactURLs removes the user information from every URL in s.
func redactURLs(s string) string {
	if !strings.Contains(s, "@") || !strings.Contains(s, "://") {
		return s
	}
	fields := strings.Fields(s)
	changed := false
	for i, f := range fields {
		if r := config.RedactURL(f); r != f {
			fields[i], changed = r, true
		}
	}
	if !changed {
		// A URL the parser refuses may still carry credentials.
		return Redacted
	}
	return strings.Join(fields, " ")
}
