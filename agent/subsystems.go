package agent

import (
	"fmt"
	"os"
	"strings"

	"github.com/elastic/go-elasticsearch/v8"
	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/agent/api"
	"github.com/heartwood-ops/heartwood/agent/consulclient"
	"github.com/heartwood-ops/heartwood/internal/consulkv"
	"github.com/heartwood-ops/heartwood/registrar"
	"github.com/heartwood-ops/heartwood/shipper"
	"github.com/heartwood-ops/heartwood/watchman"
)

// buildSubsystems creates the enabled subsystems and connects them: the
// watchman asks the registrar for Consul maintenance and sends its decision
// events through the shipper.
func (a *Agent) buildSubsystems() error {
	cfg := a.cfg
	var consul *consulapi.Client
	if cfg.Registrar.Enabled || cfg.Watchman.Enabled {
		c, err := consulclient.New(consulclient.Options{
			Addr: cfg.ConsulAddr, Token: cfg.ConsulToken, TokenFile: cfg.ConsulTokenFile,
			CAFile: cfg.ConsulCAFile, CAPath: cfg.ConsulCAPath, CertFile: cfg.ConsulCertFile,
			KeyFile: cfg.ConsulKeyFile, ServerName: cfg.ConsulTLSServerName,
		})
		if err != nil {
			return fmt.Errorf("consul-addr %s: %w", cfg.ConsulAddr, err)
		}
		consul = c
	}

	var maintainer watchman.Maintainer
	if cfg.Registrar.Enabled {
		r, err := registrar.New(cfg.Registrar, registrar.Deps{
			Source:     a.inv,
			Consul:     consul,
			NodeName:   cfg.NodeName,
			Logger:     a.log.With("component", "registrar"),
			Registerer: a.registry,
		})
		if err != nil {
			return fmt.Errorf("registrar: %w", err)
		}
		maintainer = r
		a.subs = append(a.subs, subsystem{name: "registrar", run: r.Run, ready: r.Ready, describe: r})
	}

	var events watchman.EventSink
	if cfg.Shipper.Enabled {
		es, err := newESClient(cfg.Core)
		if err != nil {
			return err
		}
		s, err := shipper.New(cfg.Shipper, shipper.Deps{
			Source:          a.inv,
			ES:              es,
			Docker:          a.docker,
			DataDir:         cfg.DataDir,
			NodeName:        cfg.NodeName,
			SelfContainerID: cfg.SelfContainerID,
			AgentVersion:    a.build.Version,
			Logger:          a.log.With("component", "shipper"),
			Registerer:      a.registry,
		})
		if err != nil {
			return fmt.Errorf("shipper: %w", err)
		}
		events = s
		a.subs = append(a.subs, subsystem{name: "shipper", run: s.Run, ready: s.Ready, describe: s})
	}

	if cfg.Watchman.Enabled {
		var kv watchman.KV
		if consul != nil {
			kv = consulkv.New(consul)
		}
		w, err := watchman.New(cfg.Watchman, watchman.Deps{
			Source:          a.inv,
			Docker:          a.docker,
			Maintainer:      maintainer,
			Events:          events,
			KV:              kv,
			SelfContainerID: cfg.SelfContainerID,
			NodeName:        cfg.NodeName,
			DataDir:         cfg.DataDir,
			Logger:          a.log.With("component", "watchman"),
			Registerer:      a.registry,
		})
		if err != nil {
			return fmt.Errorf("watchman: %w", err)
		}
		a.watchman = w
		a.subs = append(a.subs, subsystem{name: "watchman", run: w.Run, ready: w.Ready, describe: w})
	}
	return nil
}

// controller returns the watchman's pause/wake control, or nil when the
// watchman is off.
func (a *Agent) controller() api.Controller {
	if a.watchman == nil {
		return nil
	}
	return a.watchman
}

// newESClient builds the Elasticsearch client from the core settings.
func newESClient(cfg Core) (*elasticsearch.Client, error) {
	esCfg := elasticsearch.Config{
		Addresses: cfg.ESURL,
		APIKey:    cfg.ESAPIKey,
		Username:  cfg.ESUsername,
		Password:  cfg.ESPassword,
		// The shipper's writer retries per item, without limit, with
		// backoff; a second retry layer would only resend whole bodies.
		DisableRetry: true,
	}
	if cfg.ESCAFile != "" {
		ca, err := os.ReadFile(cfg.ESCAFile)
		if err != nil {
			return nil, fmt.Errorf("es-ca-file: %w", err)
		}
		esCfg.CACert = ca
	}
	es, err := elasticsearch.NewClient(esCfg)
	if err != nil {
		return nil, fmt.Errorf("es-url %s: %w", strings.Join(cfg.ESURL, ","), err)
	}
	return es, nil
}
