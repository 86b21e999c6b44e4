package registrar

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/registrar/translate"
)

func TestClassifyServices(t *testing.T) {
	all := map[string]*consulapi.AgentService{
		"n1:web:80":  {Service: "web", Meta: map[string]string{"managed_by": "heartwood", "heartwood_node": "n1", "heartwood_container": "c1", "heartwood_hash": "h1"}},
		"n2:web:80":  {Service: "web", Meta: map[string]string{"managed_by": "heartwood", "heartwood_node": "n2"}},
		"n1:old:80":  {Service: "old"},
		"n1:live:80": {Service: "live"},
		"manual":     {Service: "billing"},
		"null":       nil,
	}
	st := classifyServices(all, "n1", map[string]bool{"live": true})
	if a := st.actual["n1:web:80"]; len(st.actual) != 1 || a == nil || a.container != "c1" || a.hash != "h1" {
		t.Fatalf("actual = %+v", st.actual)
	}
	for id, want := range map[string]holder{
		"n2:web:80":  {desc: `service "web" registered by Heartwood for node "n2"`},
		"n1:old:80":  {desc: `service "old" not registered by Heartwood`, registratorFor: "old"},
		"n1:live:80": {desc: `service "live" not registered by Heartwood`, registratorFor: "live"},
		"manual":     {desc: `service "billing" not registered by Heartwood`},
		"null":       {desc: "a service the agent did not describe"},
	} {
		if got := st.taken[id]; got != want {
			t.Errorf("taken[%s] = %+v, want %+v", id, got, want)
		}
	}
	if len(st.stale) != 1 || st.stale["n1:old:80"] == "" {
		t.Errorf("stale = %v, want only n1:old:80", st.stale)
	}
	if st := classifyServices(all, "n1", nil); len(st.stale) != 0 {
		t.Errorf("stale without cleanup = %v", st.stale)
	}
}

// FuzzClassifyServices feeds the registrar arbitrary /v1/agent/services
// answers: every service is either this node's (by its ownership Meta) or
// held by another, reports about others stay short valid text, and stale
// services are only Registrator-format ones of this node.
func FuzzClassifyServices(f *testing.F) {
	f.Add([]byte(`{"n1:web:80":{"ID":"n1:web:80","Service":"web","Meta":{"managed_by":"heartwood","heartwood_node":"n1","heartwood_hash":"ab"}}}`), "n1", true)
	f.Add([]byte(`{"n1:old:80":{"Service":"old"},"manual":{"Service":"x","Meta":{"managed_by":"heartwood","heartwood_node":"n2"}},"n":null}`), "n1", true)
	f.Add([]byte(`{"a:b:1:udp":{"Service":"\u00ff\u00fe","Meta":{"managed_by":"HEARTWOOD"}}}`), "a", false)
	f.Add([]byte(`{"":{"Service":"`+strings.Repeat("é", 100)+`","Meta":{"heartwood_node":""}}}`), "", true)
	f.Fuzz(func(t *testing.T, body []byte, node string, cleanup bool) {
		var all map[string]*consulapi.AgentService
		if json.Unmarshal(body, &all) != nil {
			return
		}
		var running map[string]bool
		if cleanup {
			running = map[string]bool{"web": true}
		}
		st := classifyServices(all, node, running)
		if len(st.actual)+len(st.taken) != len(all) {
			t.Fatalf("%d services sorted into %d ours + %d others", len(all), len(st.actual), len(st.taken))
		}
		for id, s := range all {
			_, ours := st.actual[id]
			h, other := st.taken[id]
			if ours == other {
				t.Fatalf("%q: ours=%v other=%v", id, ours, other)
			}
			if ours != (s != nil && s.Meta[translate.MetaManagedBy] == translate.ManagedByValue && s.Meta[translate.MetaNode] == node) {
				t.Fatalf("%q classified as ours=%v with Meta %v", id, ours, s.Meta)
			}
			if other {
				if !utf8.ValidString(h.desc) || len(h.desc) > 256 {
					t.Fatalf("%q: holder description %q", id, h.desc)
				}
				if h.registratorFor != "" && (!strings.HasPrefix(id, node+":") || s != nil && s.Meta[translate.MetaManagedBy] == translate.ManagedByValue) {
					t.Fatalf("%q: Registrator container %q for node %q", id, h.registratorFor, node)
				}
			}
		}
		for id := range st.stale {
			h, ok := st.taken[id]
			if !ok || h.registratorFor == "" || running == nil || running[h.registratorFor] {
				t.Fatalf("stale %q: holder %+v, running %v", id, h, running)
			}
		}
	})
}
