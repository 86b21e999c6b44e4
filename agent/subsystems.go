package agent

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/elastic/go-elasticsearch/v8"
	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/agent/api"
	"github.com/heartwood-ops/heartwood/agent/consulclient"
	"github.com/heartwood-ops/heartwood/config"
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

	var (
		maintainer watchman.Maintainer
		sink       metricsSink
		sh         shipperHealth
		rh         registrarHealth
		wh         watchmanHealth
	)
	if cfg.Registrar.Enabled {
		r, err := registrar.New(cfg.Registrar, registrar.Deps{
			Source:     a.inv,
			Consul:     consul,
			NodeName:   cfg.NodeName,
			Logger:     a.log.With("subsystem", "registrar"),
			Registerer: a.registry,
		})
		if err != nil {
			return named("registrar", err)
		}
		maintainer, rh = r, r
		a.subs = append(a.subs, subsystem{name: "registrar", run: r.Run, ready: r.Ready, describe: r})
	}

	var events watchman.EventSink
	var samples watchman.SampleSink
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
			Logger:          a.log.With("subsystem", "shipper"),
			Registerer:      a.registry,
		})
		if err != nil {
			return named("shipper", err)
		}
		events, samples, sink, sh = s, s, s, s
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
			Samples:         samples,
			KV:              kv,
			SelfContainerID: cfg.SelfContainerID,
			NodeName:        cfg.NodeName,
			DataDir:         cfg.DataDir,
			Logger:          a.log.With("subsystem", "watchman"),
			Registerer:      a.registry,
		})
		if err != nil {
			return named("watchman", err)
		}
		a.watchman, wh = w, w
		a.subs = append(a.subs, subsystem{name: "watchman", run: w.Run, ready: w.Ready, describe: w})
	}
	if hw := a.newHealthWriter(sink, sh, rh, wh); hw != nil {
		a.subs = append(a.subs, subsystem{name: "health", run: hw.run})
	}
	return nil
}

// controller returns the watchman's pause/wake control, or nil when the
// watchman is off.
func (a *Agent) controller() api.Controller {
	if a.watchman == nil {
		return nil
	}
	return watchmanControl{a.watchman}
}

// pauseWaker is the watchman's control surface as the API uses it;
// *watchman.Watchman satisfies it.
type pauseWaker interface {
	Pause(ctx context.Context, ref, reason string) error
	WakeWith(ctx context.Context, ref string, opt watchman.WakeOptions) error
}

// watchmanControl adapts the watchman to api.Controller. API wakes are
// recorded with the api trigger and the caller's reason; a forced wake also
// wakes a container that the watchman did not pause itself.
type watchmanControl struct{ w pauseWaker }

func (c watchmanControl) Pause(ctx context.Context, id, reason string) error {
	return c.w.Pause(ctx, id, reason)
}

func (c watchmanControl) Wake(ctx context.Context, id, reason string, force bool) error {
	return c.w.WakeWith(ctx, id, watchman.WakeOptions{Trigger: watchman.TriggerAPI, Reason: reason, Force: force})
}

// newESClient builds the Elasticsearch client from the core settings.
func newESClient(cfg Core) (*elasticsearch.Client, error) {
	apiKey, password := cfg.ESAPIKey, cfg.ESPassword
	if cfg.ESAPIKeyFile != "" {
		k, err := readSecretFile(cfg.ESAPIKeyFile)
		if err != nil {
			return nil, fmt.Errorf("es-api-key-file: %w", err)
		}
		apiKey = k
	}
	if cfg.ESPasswordFile != "" {
		p, err := readSecretFile(cfg.ESPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("es-password-file: %w", err)
		}
		password = p
	}
	esCfg := elasticsearch.Config{
		Addresses: cfg.ESURL,
		APIKey:    apiKey,
		Username:  cfg.ESUsername,
		Password:  password,
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
		return nil, fmt.Errorf("es-url %s: %s", redactedURLs(cfg.ESURL), redactURLsIn(err.Error(), cfg.ESURL))
	}
	return es, nil
}

// redactedURLs joins urls with their credentials removed.
func redactedURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = config.RedactURL(u)
	}
	return strings.Join(out, ",")
}

// redactURLsIn replaces every one of urls in msg by its redacted form, and
// any password they hold on its own.
func redactURLsIn(msg string, urls []string) string {
	for _, raw := range urls {
		msg = strings.ReplaceAll(msg, raw, config.RedactURL(raw))
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok && p != "" {
				msg = strings.ReplaceAll(msg, p, "redacted")
			}
			if n := u.User.Username(); n != "" {
				msg = strings.ReplaceAll(msg, n+"@", "redacted@")
			}
		}
	}
	return msg
}

// named prefixes err with the subsystem's name unless its message already
// starts with it, so that every error says the name once.
func named(name string, err error) error {
	msg := err.Error()
	if strings.HasPrefix(msg, name+":") || strings.HasPrefix(msg, name+".") {
		return err
	}
	return fmt.Errorf("%s: %w", name, err)
}
