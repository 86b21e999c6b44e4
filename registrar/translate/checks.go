package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/registrar/labels"
)

// primaryKinds are Registrator's check keys in its precedence order: only
// the first one set becomes the service's SERVICE_CHECK_* check.
var primaryKinds = []string{"check_http", "check_https", "check_cmd", "check_script", "check_ttl", "check_tcp", "check_grpc"}

// checks builds the service's checks: Registrator's single SERVICE_CHECK_*
// check (ID "service:<id>", as Registrator's) and the checks of the
// SERVICE_CHECKS JSON list (IDs "service:<id>:<check id>"). Unless
// allowScripts, script checks are left out with a warning; dropped counts
// them.
func checks(serviceID, host string, port int, vals labels.Values, defInterval string, allowScripts bool, warn func(string, ...any)) (out []*consulapi.AgentServiceCheck, dropped int) {
	if c := primaryCheck(serviceID, host, port, vals, defInterval, warn); c != nil {
		if len(c.Args) > 0 && !allowScripts {
			dropped++
			warn("SERVICE_CHECK_SCRIPT ignored: script checks run commands on the Consul host and are off (registrar.allow-script-checks=false)")
		} else {
			out = append(out, c)
		}
	}
	if raw := vals.Get("checks"); raw != "" {
		list, err := ParseChecks(raw)
		if err != nil {
			warn("SERVICE_CHECKS: %v", err)
		}
		ids := map[string]bool{}
		for _, spec := range list {
			if ids[spec.ID] {
				warn("SERVICE_CHECKS: duplicate check id %q; ignored", spec.ID)
				continue
			}
			ids[spec.ID] = true
			c, err := spec.build(serviceID, host, port, defInterval)
			if err != nil {
				warn("SERVICE_CHECKS: check %q ignored: %v", spec.ID, err)
				continue
			}
			if len(c.Args) > 0 && !allowScripts {
				dropped++
				warn("SERVICE_CHECKS: check %q ignored: script checks (args) run commands on the Consul host and are off (registrar.allow-script-checks=false)", spec.ID)
				continue
			}
			out = append(out, c)
		}
	}
	return out, dropped
}

func primaryCheck(serviceID, host string, port int, vals labels.Values, defInterval string, warn func(string, ...any)) *consulapi.AgentServiceCheck {
	kind := ""
	for _, k := range primaryKinds {
		if vals.Get(k) == "" {
			continue
		}
		if kind == "" {
			kind = k
		} else {
			warn("SERVICE_%s ignored: only one SERVICE_CHECK_* check per service (SERVICE_%s wins, as in Registrator); use SERVICE_CHECKS for more", strings.ToUpper(k), strings.ToUpper(kind))
		}
	}
	if kind == "" {
		return nil
	}
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	c := &consulapi.AgentServiceCheck{CheckID: "service:" + serviceID}
	v := vals.Get(kind)
	network := false
	switch kind {
	case "check_http", "check_https":
		scheme := strings.TrimPrefix(kind, "check_")
		c.HTTP = scheme + "://" + hp + pathOf(v)
		c.Method = vals.Get(kind + "_method")
		network = true
	case "check_cmd":
		warn("SERVICE_CHECK_CMD is not supported (it needs Registrator's removed check-cmd helper); no check registered")
		return nil
	case "check_script":
		script := strings.ReplaceAll(v, "$SERVICE_IP", host)
		script = strings.ReplaceAll(script, "$SERVICE_PORT", strconv.Itoa(port))
		c.Args = []string{"/bin/sh", "-c", script}
		network = true // Registrator sets an interval for script checks too
	case "check_ttl":
		c.TTL = v
	case "check_tcp":
		c.TCP = hp
		network = true
	case "check_grpc":
		c.GRPC = hp
		if vals.Get("check_grpc_use_tls") != "" {
			c.GRPCUseTLS = true
		}
		network = true
	}
	if network {
		c.Interval = defInterval
		if iv := vals.Get("check_interval"); iv != "" {
			c.Interval = iv
		}
		if kind != "check_script" {
			c.Timeout = vals.Get("check_timeout")
		}
	}
	if vals.Get("check_tls_skip_verify") != "" && (c.GRPCUseTLS || kind == "check_https") {
		c.TLSSkipVerify = true
	}
	c.TLSServerName = vals.Get("check_tls_server_name")
	c.Status = vals.Get("check_initial_status")
	c.DeregisterCriticalServiceAfter = vals.Get("check_deregister_after")
	c.Name = vals.Get("check_name")
	c.Notes = vals.Get("check_notes")
	for key, dst := range map[string]*int{
		"check_success_before_passing":   &c.SuccessBeforePassing,
		"check_failures_before_warning":  &c.FailuresBeforeWarning,
		"check_failures_before_critical": &c.FailuresBeforeCritical,
	} {
		if s := vals.Get(key); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				warn("SERVICE_%s=%q must be a non-negative integer; ignored", strings.ToUpper(key), truncate(s, 40))
				continue
			}
			*dst = n
		}
	}
	if err := validateCheck(c); err != nil {
		warn("SERVICE_%s check not registered: %v", strings.ToUpper(kind), err)
		return nil
	}
	return c
}

func pathOf(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/" + p
}

// validateCheck rejects what would make Consul refuse the whole service.
func validateCheck(c *consulapi.AgentServiceCheck) error {
	for name, v := range map[string]string{"interval": c.Interval, "timeout": c.Timeout, "ttl": c.TTL, "deregister_after": c.DeregisterCriticalServiceAfter} {
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s %q is not a positive duration", name, truncate(v, 40))
		}
	}
	switch c.Status {
	case "", consulapi.HealthPassing, consulapi.HealthWarning, consulapi.HealthCritical:
	default:
		return fmt.Errorf("initial status %q must be passing, warning or critical", truncate(c.Status, 40))
	}
	if c.Method != "" {
		for i := 0; i < len(c.Method); i++ {
			ch := c.Method[i]
			if !(ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z') {
				return fmt.Errorf("method %q is not an HTTP method", truncate(c.Method, 40))
			}
		}
	}
	for k := range c.Header {
		if k == "" || strings.ContainsAny(k, " :\r\n\t") {
			return fmt.Errorf("header name %q is invalid", truncate(k, 40))
		}
	}
	return nil
}

// CheckSpec is one entry of the SERVICE_CHECKS (or SERVICE_<port>_CHECKS)
// JSON list, Heartwood's extension for several checks per service. Exactly
// one of HTTP, HTTPS, TCP, GRPC, H2PING, TTL and Args must be set; targets
// are relative to the service's address and port.
type CheckSpec struct {
	// ID is required and unique within the service; the Consul check ID is
	// "service:<service id>:<id>".
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Notes string `json:"notes,omitempty"`
	// HTTP and HTTPS are URL paths.
	HTTP  string `json:"http,omitempty"`
	HTTPS string `json:"https,omitempty"`
	TCP   bool   `json:"tcp,omitempty"`
	// GRPC is the gRPC health service name; "" checks the whole server.
	GRPC   *string  `json:"grpc,omitempty"`
	H2PING bool     `json:"h2ping,omitempty"`
	TTL    string   `json:"ttl,omitempty"`
	Args   []string `json:"args,omitempty"`

	Method        string              `json:"method,omitempty"`
	Header        map[string][]string `json:"header,omitempty"`
	Body          string              `json:"body,omitempty"`
	TLSServerName string              `json:"tls_server_name,omitempty"`
	TLSSkipVerify bool                `json:"tls_skip_verify,omitempty"`
	UseTLS        bool                `json:"use_tls,omitempty"`

	Interval        string `json:"interval,omitempty"`
	Timeout         string `json:"timeout,omitempty"`
	InitialStatus   string `json:"initial_status,omitempty"`
	DeregisterAfter string `json:"deregister_after,omitempty"`

	SuccessBeforePassing   int `json:"success_before_passing,omitempty"`
	FailuresBeforeWarning  int `json:"failures_before_warning,omitempty"`
	FailuresBeforeCritical int `json:"failures_before_critical,omitempty"`
}

// MaxChecks bounds the SERVICE_CHECKS list.
const MaxChecks = 16

// ParseChecks parses a SERVICE_CHECKS value: a JSON array of CheckSpec.
// Unknown fields are errors, so typos do not pass silently. Entries with a
// missing or invalid id are dropped with the error; the others are kept.
func ParseChecks(raw string) ([]CheckSpec, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.DisallowUnknownFields()
	var list []CheckSpec
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("not a JSON array of checks: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON array")
	}
	if len(list) > MaxChecks {
		return list[:MaxChecks], fmt.Errorf("more than %d checks; the rest are ignored", MaxChecks)
	}
	var bad []string
	out := list[:0]
	for i, s := range list {
		if !checkIDOK(s.ID) {
			bad = append(bad, fmt.Sprintf("entry %d: id %q must be 1..64 characters of [A-Za-z0-9_.-]", i, truncate(s.ID, 40)))
			continue
		}
		out = append(out, s)
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return out, nil
}

func checkIDOK(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-' || ch == '.') {
			return false
		}
	}
	return true
}

func (s CheckSpec) build(serviceID, host string, port int, defInterval string) (*consulapi.AgentServiceCheck, error) {
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	c := &consulapi.AgentServiceCheck{
		CheckID:                        "service:" + serviceID + ":" + s.ID,
		Name:                           s.Name,
		Notes:                          s.Notes,
		Status:                         s.InitialStatus,
		DeregisterCriticalServiceAfter: s.DeregisterAfter,
		SuccessBeforePassing:           s.SuccessBeforePassing,
		FailuresBeforeWarning:          s.FailuresBeforeWarning,
		FailuresBeforeCritical:         s.FailuresBeforeCritical,
	}
	kinds := 0
	network := true
	if s.HTTP != "" {
		kinds++
		c.HTTP = "http://" + hp + pathOf(s.HTTP)
	}
	if s.HTTPS != "" {
		kinds++
		c.HTTP = "https://" + hp + pathOf(s.HTTPS)
	}
	if s.HTTP != "" || s.HTTPS != "" {
		c.Method, c.Header, c.Body = s.Method, s.Header, s.Body
		c.TLSServerName, c.TLSSkipVerify = s.TLSServerName, s.TLSSkipVerify
	} else if s.Method != "" || len(s.Header) > 0 || s.Body != "" {
		return nil, fmt.Errorf("method, header and body apply to http/https checks only")
	}
	if s.TCP {
		kinds++
		c.TCP = hp
	}
	if s.GRPC != nil {
		kinds++
		c.GRPC = hp
		if *s.GRPC != "" {
			c.GRPC += "/" + *s.GRPC
		}
		c.GRPCUseTLS = s.UseTLS
		c.TLSServerName, c.TLSSkipVerify = s.TLSServerName, s.TLSSkipVerify
	}
	if s.H2PING {
		kinds++
		c.H2PING = hp
		c.H2PingUseTLS = s.UseTLS
		c.TLSServerName, c.TLSSkipVerify = s.TLSServerName, s.TLSSkipVerify
	}
	if s.TTL != "" {
		kinds++
		c.TTL = s.TTL
		network = false
	}
	if len(s.Args) > 0 {
		kinds++
		c.Args = s.Args
	}
	if kinds != 1 {
		return nil, fmt.Errorf("exactly one of http, https, tcp, grpc, h2ping, ttl and args must be set, got %d", kinds)
	}
	if network {
		c.Interval = defInterval
		if s.Interval != "" {
			c.Interval = s.Interval
		}
		if len(s.Args) == 0 {
			c.Timeout = s.Timeout
		}
	}
	if c.Method != "" {
		if _, err := http.NewRequest(c.Method, "http://x/", nil); err != nil {
			return nil, fmt.Errorf("method %q: %w", truncate(c.Method, 40), err)
		}
	}
	if err := validateCheck(c); err != nil {
		return nil, err
	}
	return c, nil
}
