package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/client"

	"github.com/heartwood-ops/heartwood/agent"
	"github.com/heartwood-ops/heartwood/agent/doctor"
	"github.com/heartwood-ops/heartwood/dashboards"
	"github.com/heartwood-ops/heartwood/internal/esschema"
	"github.com/heartwood-ops/heartwood/watchman"
)

// doctorCmd checks what the agent needs on this node and prints one line
// per check; it exits 1 when a check failed.
func doctorCmd(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	var kb kibanaFlags
	timeout := 10 * time.Second
	cfg, err := loadConfig("doctor", args, environ, stderr, func(fs *flag.FlagSet) {
		kb.register(fs)
		fs.DurationVar(&timeout, "timeout", timeout, "time limit of each check")
	})
	if err != nil {
		return configFailed(stderr, "doctor", err)
	}
	if err := kb.resolve(environ); err != nil {
		fmt.Fprintf(stderr, "heartwood doctor: %v\n", err)
		return 2
	}
	checks, err := doctorChecks(cfg, kb, timeout)
	if err != nil {
		fmt.Fprintf(stderr, "heartwood doctor: %v\n", err)
		return 2
	}
	if doctor.Run(ctx, checks, timeout, stdout) > 0 {
		return 1
	}
	return 0
}

func doctorChecks(cfg agent.Config, kb kibanaFlags, timeout time.Duration) ([]doctor.Check, error) {
	docker, err := client.NewClientWithOpts(client.WithHost(cfg.DockerHost), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("--docker-host %s: %w", cfg.DockerHost, err)
	}
	consulHC, err := doctor.HTTPClient(doctor.TLSFiles{CAFile: cfg.ConsulCAFile, CertFile: cfg.ConsulCertFile,
		KeyFile: cfg.ConsulKeyFile, ServerName: cfg.ConsulTLSServerName}, timeout)
	if err != nil {
		return nil, fmt.Errorf("consul TLS files: %w", err)
	}
	esHC, err := doctor.HTTPClient(doctor.TLSFiles{CAFile: cfg.ESCAFile}, timeout)
	if err != nil {
		return nil, fmt.Errorf("--es-ca-file: %w", err)
	}
	kbHC, err := doctor.HTTPClient(doctor.TLSFiles{CAFile: kb.caFile}, timeout)
	if err != nil {
		return nil, fmt.Errorf("--kibana-ca-file: %w", err)
	}
	token := cfg.ConsulToken
	if token == "" && cfg.ConsulTokenFile != "" {
		b, err := os.ReadFile(cfg.ConsulTokenFile)
		if err != nil {
			return nil, fmt.Errorf("--consul-token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if err := cfg.Resolve(); err != nil {
		return nil, err
	}
	node := cfg.NodeName
	consulURL := cfg.ConsulAddr
	if !strings.Contains(consulURL, "://") {
		consulURL = "http://" + consulURL
	}
	consul := doctor.Endpoint{URL: consulURL, Client: consulHC}
	esURL := ""
	if len(cfg.ESURL) > 0 {
		esURL = cfg.ESURL[0]
	}
	es := doctor.Endpoint{URL: esURL, Client: esHC, Header: doctor.BasicOrToken(cfg.ESAPIKey, cfg.ESUsername, cfg.ESPassword)}
	kibana := dashboards.Kibana{URL: kb.url, APIKey: kb.apiKey, Username: kb.user, Password: kb.pass, Client: kbHC}
	sh := cfg.Shipper
	streams := []string{
		"logs-" + sh.Dataset + "-" + sh.Namespace,
		"logs-" + sh.Output.DeadLetter.Dataset + "-" + sh.Output.DeadLetter.Namespace,
		"logs-" + watchman.EventDataset + "-" + sh.Namespace,
		"metrics-heartwood.container-" + sh.Namespace,
	}
	if cfg.HealthInterval > 0 {
		streams = append(streams, "metrics-"+esschema.AgentDataset+"-"+sh.Namespace)
	}
	return []doctor.Check{
		doctor.Docker(cfg.DockerHost, docker),
		doctor.LogDirectory(sh.ContainersRoot),
		doctor.ProcAndCgroups(cfg.Watchman.ProcRoot, cfg.Watchman.CgroupRoot),
		doctor.Consul(consul, token, node),
		doctor.Elasticsearch(es, streams),
		doctor.Kibana(kb.url, kibana),
		doctor.Clock(time.Now, doctor.DateHeader("consul", consul, "/v1/status/leader"), doctor.ESNodeTime(es)),
	}, nil
}
