//go:build integration

package registrar_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/internal/testenv"
	"github.com/heartwood-ops/heartwood/registrar"
)

// TestIntegrationForeignServiceIDSurvives registers a service directly on
// the shared Consul agent, then starts containers whose SERVICE_ID names
// it: one before the registrar's first read of the agent, one after (found
// only by the check before registering). The foreign service survives
// untouched, through reconciles and the containers' removal, and the
// registrar reports the conflict in each container's view. A SERVICE_ID
// that is free is registered.
func TestIntegrationForeignServiceIDSurvives(t *testing.T) {
	docker := testenv.Docker(t)
	it := newITest(t, docker, testenv.RequireConsul(t))
	agent := it.consul.Agent()
	foreign := func(id string) *consulapi.AgentServiceRegistration {
		return &consulapi.AgentServiceRegistration{ID: id, Name: "foreign-db-" + it.runID, Port: 5432, Address: "127.0.0.9", Tags: []string{"primary"}, Meta: map[string]string{"owner": "dba"}}
	}
	early, late, free := "hw-foreign-early-"+it.runID, "hw-foreign-late-"+it.runID, "hw-free-"+it.runID
	for _, id := range []string{early, late} {
		t.Cleanup(func() { _ = agent.ServiceDeregister(id) })
	}
	if err := agent.ServiceRegister(foreign(early)); err != nil {
		t.Fatal(err)
	}

	cfg := it.config()
	cfg.ReconcileInterval = time.Second
	a := it.start(docker, cfg)
	poll.Until(t, 30*time.Second, "registrar ready", func() (bool, string) {
		err := a.reg.Ready()
		return err == nil, fmt.Sprint(err)
	})
	if err := agent.ServiceRegister(foreign(late)); err != nil {
		t.Fatal(err)
	}

	run := func(base, sid string) string {
		return it.run(docker, spec{name: it.name(base), labels: map[string]string{"SERVICE_ID": sid}, ports: []string{"80/tcp"}})
	}
	cEarly, cLate, cFree := run("early", early), run("late", late), run("free", free)
	conflict := func(cid, sid string) (bool, string) {
		v, ok := a.reg.DescribeContainer(cid).(registrar.ContainerView)
		if !ok {
			return false, "container unknown to the registrar"
		}
		for _, s := range v.Skipped {
			if s.ServiceID == sid && strings.Contains(s.Reason, "not registered by Heartwood") && strings.Contains(s.Reason, "foreign-db-"+it.runID) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("view %+v", v)
	}
	for cid, sid := range map[string]string{cEarly: early, cLate: late} {
		poll.Until(t, 30*time.Second, "conflict reported for "+sid, func() (bool, string) { return conflict(cid, sid) })
	}
	it.waitIDs(30*time.Second, free)

	intact := func(when string) {
		t.Helper()
		for _, id := range []string{early, late} {
			s, _, err := agent.Service(id, nil)
			if err != nil {
				t.Fatalf("%s: foreign service %s: %v", when, id, err)
			}
			want := foreign(id)
			if s.Service != want.Name || s.Port != want.Port || s.Address != want.Address || fmt.Sprint(s.Tags) != fmt.Sprint(want.Tags) || fmt.Sprint(s.Meta) != fmt.Sprint(want.Meta) {
				t.Fatalf("%s: foreign service %s changed: %+v", when, id, s)
			}
		}
	}
	intact("after the containers started")
	time.Sleep(2500 * time.Millisecond) // two full reconciles (1 s)
	intact("after full reconciles")
	for cid, sid := range map[string]string{cEarly: early, cLate: late} {
		if ok, detail := conflict(cid, sid); !ok {
			t.Errorf("conflict for %s no longer reported after full reconciles: %s", sid, detail)
		}
	}

	for _, cid := range []string{cEarly, cLate, cFree} {
		it.remove(docker, cid)
	}
	it.waitIDs(30 * time.Second)
	time.Sleep(2500 * time.Millisecond)
	intact("after the containers were removed")
}
