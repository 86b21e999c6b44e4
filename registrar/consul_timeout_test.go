package registrar

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/inventory/inventorytest"
)

// hangingConsul accepts connections and never answers, like an agent whose
// HTTP server is wedged. It returns the address.
func hangingConsul(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestConsulCallsHaveDeadline: against a Consul that accepts connections
// but never answers, every kind of call (agent self, reads, writes) fails
// after registrar.consul-timeout instead of blocking the registrar.
func TestConsulCallsHaveDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name string
		ip   string
		call func(r *Registrar) error
	}{
		{"agent self", "", func(r *Registrar) error { return r.reconcile(context.Background(), true, nil) }},
		{"read services", "10.0.0.1", func(r *Registrar) error { return r.reconcile(context.Background(), true, nil) }},
		{"write", "10.0.0.1", func(r *Registrar) error {
			return r.execute(context.Background(), []plan{{id: "n1:web:80", steps: []step{{op: opDeregister, id: "n1:web:80"}}}}, nil)
		}},
		{"ownership check", "10.0.0.1", func(r *Registrar) error {
			reg := &consulapi.AgentServiceRegistration{ID: "n1:web:80", Name: "web", Meta: map[string]string{"heartwood_hash": "h"}}
			return r.execute(context.Background(), []plan{{id: "n1:web:80", steps: []step{{op: opRegister, id: "n1:web:80", reg: reg, fresh: true}}}}, nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ccfg := consulapi.DefaultConfig()
			ccfg.Address = hangingConsul(t)
			client, err := consulapi.NewClient(ccfg)
			if err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			cfg.IP = tc.ip
			cfg.ConsulTimeout = timeout
			r, err := New(cfg, Deps{Source: inventorytest.New(ctr("web")), Consul: client, NodeName: "n1"})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- tc.call(r) }()
			select {
			case err := <-done:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v, want a deadline error", err)
				}
				if took := time.Since(start); took > 10*timeout {
					t.Errorf("took %s with consul-timeout %s", took, timeout)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("still waiting for the hanging Consul after 20s")
			}
		})
	}
}
