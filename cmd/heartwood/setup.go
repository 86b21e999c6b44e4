package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/heartwood-ops/heartwood/agent"
	"github.com/heartwood-ops/heartwood/agent/doctor"
	"github.com/heartwood-ops/heartwood/dashboards"
	"github.com/heartwood-ops/heartwood/internal/esschema"
	"github.com/heartwood-ops/heartwood/internal/httpclient"
)

// setupStep is one thing setup installs. run reports whether it changed
// (or, in a dry run, would change) anything, and what it did.
type setupStep struct {
	name string
	run  func(ctx context.Context, dryRun bool) (changed bool, msg string, err error)
}

// setup installs what SREs use around the agents: Elasticsearch templates
// and retention, Kibana saved objects and Prometheus alert rules, or
// exports them to a directory. It prints a line
// per step and changes nothing that is already up to date.
func setup(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	var (
		kb                     kibanaFlags
		rules, objects, export string
		dryRun, templates      bool
		wait                   time.Duration
	)
	cfg, err := loadConfig("setup", args, environ, stderr, func(fs *flag.FlagSet) {
		kb.register(fs)
		fs.StringVar(&rules, "alert-rules", "", "write the Prometheus alert rules to this `file` (- for stdout)")
		fs.StringVar(&objects, "kibana-objects", "", "write the Kibana saved objects NDJSON to this `file` (- for stdout) instead of importing")
		fs.StringVar(&export, "export", "", "write everything setup installs into this `directory` (Elasticsearch templates, Kibana objects, alert rules and their tests, Grafana dashboard, Prometheus scrape configuration) and install nothing")
		fs.BoolVar(&dryRun, "dry-run", false, "contact the services and say what would change, without changing anything")
		fs.BoolVar(&templates, "templates", true, "install the Elasticsearch index templates and retention (at --es-url)")
		fs.DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for each service to become ready")
	})
	if err != nil {
		return configFailed(stderr, "setup", err)
	}
	if err := kb.resolve(environ); err != nil {
		fmt.Fprintf(stderr, "heartwood setup: %v\n", err)
		return 2
	}
	if export != "" {
		if err := exportAssets(export, cfg.Shipper.SchemaOptions(esschema.Features{}), stdout); err != nil {
			fmt.Fprintf(stderr, "heartwood setup: --export %s: %v\n", export, err)
			return 1
		}
		return 0
	}
	var steps []setupStep
	for _, w := range []struct {
		flag, path string
		data       []byte
	}{{"--alert-rules", rules, dashboards.AlertRules()}, {"--kibana-objects", objects, dashboards.KibanaObjects()}} {
		if w.path == "" {
			continue
		}
		if w.path == "-" {
			if _, err := stdout.Write(w.data); err != nil {
				return 1
			}
			continue
		}
		steps = append(steps, fileStep(w.flag, w.path, w.data))
	}
	if templates && len(cfg.ESURL) > 0 {
		hc, err := doctor.HTTPClient(doctor.TLSFiles{CAFile: cfg.ESCAFile}, time.Minute)
		if err != nil {
			fmt.Fprintf(stderr, "heartwood setup: --es-ca-file: %v\n", err)
			return 2
		}
		es := esschema.HTTP{URL: cfg.ESURL[0], Client: hc, Header: httpclient.Credentials(cfg.ESAPIKey, cfg.ESUsername, cfg.ESPassword)}
		steps = append(steps, esSteps(es, cfg, wait)...)
	}
	if kb.url != "" {
		hc, err := doctor.HTTPClient(doctor.TLSFiles{CAFile: kb.caFile}, time.Minute)
		if err != nil {
			fmt.Fprintf(stderr, "heartwood setup: --kibana-ca-file: %v\n", err)
			return 2
		}
		k := dashboards.Kibana{URL: kb.url, APIKey: kb.apiKey, Username: kb.user, Password: kb.pass, Client: hc}
		steps = append(steps, kibanaSteps(k, wait)...)
	}
	if len(steps) == 0 {
		if rules == "-" || objects == "-" {
			return 0
		}
		fmt.Fprintln(stderr, "heartwood setup: nothing to do: give --es-url, --kibana-url, --alert-rules, --kibana-objects or --export")
		return 2
	}
	return runSteps(ctx, steps, dryRun, stdout, stderr)
}

// runSteps runs the steps in order, one progress line each, and stops at
// the first error.
func runSteps(ctx context.Context, steps []setupStep, dryRun bool, stdout, stderr io.Writer) int {
	changes := 0
	for i, s := range steps {
		start := time.Now()
		fmt.Fprintf(stdout, "[%d/%d] %s: ", i+1, len(steps), s.name)
		changed, msg, err := s.run(ctx, dryRun)
		if err != nil {
			fmt.Fprintln(stdout, "failed")
			fmt.Fprintf(stderr, "heartwood setup: %s: %v\n", s.name, err)
			return 1
		}
		if changed {
			changes++
		}
		fmt.Fprintf(stdout, "%s (%s)\n", msg, time.Since(start).Round(time.Millisecond))
	}
	switch {
	case changes == 0:
		fmt.Fprintln(stdout, "nothing to change: everything is up to date")
	case dryRun:
		fmt.Fprintf(stdout, "dry run: %d step(s) would change something; nothing was changed\n", changes)
	default:
		fmt.Fprintf(stdout, "done: %d step(s) changed something\n", changes)
	}
	return 0
}

// fileStep writes data to path unless the file already holds it.
func fileStep(flagName, path string, data []byte) setupStep {
	return setupStep{name: path, run: func(ctx context.Context, dryRun bool) (bool, string, error) {
		old, err := os.ReadFile(path)
		if err == nil && bytes.Equal(old, data) {
			return false, "up to date", nil
		}
		if dryRun {
			return true, "would write", nil
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return false, "", fmt.Errorf("%s: %w", flagName, err)
		}
		return true, "written", nil
	}}
}

// kibanaSteps wait for Kibana, then import the saved objects that differ.
func kibanaSteps(k dashboards.Kibana, wait time.Duration) []setupStep {
	return []setupStep{
		{name: "Kibana " + k.URL, run: func(ctx context.Context, _ bool) (bool, string, error) {
			ctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			v, err := k.WaitReady(ctx)
			if err != nil {
				return false, "", kibanaErr(err)
			}
			return false, "ready, Kibana " + v, nil
		}},
		{name: "Kibana saved objects", run: func(ctx context.Context, dryRun bool) (bool, string, error) {
			objs := dashboards.KibanaObjects()
			changed, err := k.Changed(ctx, objs)
			if err != nil {
				return false, "", kibanaErr(err)
			}
			if len(changed) == 0 {
				return false, "up to date", nil
			}
			if dryRun {
				return true, fmt.Sprintf("would import %d changed object(s): %s", len(changed), strings.Join(changed, ", ")), nil
			}
			res, err := k.Import(ctx, objs)
			if err != nil {
				return false, "", kibanaErr(err)
			}
			return true, fmt.Sprintf("imported %d objects (%d had changed)", res.SuccessCount, len(changed)), nil
		}},
	}
}

// kibanaErr says which flag to look at.
func kibanaErr(err error) error {
	var se *dashboards.StatusError
	switch {
	case errors.Is(err, dashboards.ErrNotKibana):
		return fmt.Errorf("%w; check --kibana-url (Kibana's base URL, with /s/<space> for a space)", err)
	case errors.As(err, &se) && (se.Status == 401 || se.Status == 403):
		return fmt.Errorf("%w; check --kibana-api-key or --kibana-username/--kibana-password", err)
	}
	return err
}

// esSteps wait for Elasticsearch, detect its features and install the
// templates that differ.
func esSteps(es esschema.HTTP, cfg agent.Config, wait time.Duration) []setupStep {
	var f esschema.Features
	return []setupStep{
		{name: "Elasticsearch " + es.URL, run: func(ctx context.Context, _ bool) (bool, string, error) {
			ctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			if err := esschema.WaitReady(ctx, es); err != nil {
				return false, "", esErr(err)
			}
			var notes []string
			var err error
			f, notes, err = esschema.Detect(ctx, es)
			if err != nil {
				return false, "", esErr(err)
			}
			msg := "ready"
			if len(notes) > 0 {
				msg += "; " + strings.Join(notes, "; ")
			}
			return false, msg, nil
		}},
		{name: "Elasticsearch templates and retention", run: func(ctx context.Context, dryRun bool) (bool, string, error) {
			changes, err := cfg.Shipper.SchemaOptions(f).Install(ctx, es, dryRun)
			if err != nil {
				return false, "", esErr(err)
			}
			if len(changes) == 0 {
				return false, "up to date", nil
			}
			var names []string
			for _, c := range changes {
				names = append(names, c.String())
			}
			verb := "installed"
			if dryRun {
				verb = "would install"
			}
			return true, fmt.Sprintf("%s %d: %s", verb, len(changes), strings.Join(names, ", ")), nil
		}},
	}
}

// esErr says which flag to look at.
func esErr(err error) error {
	var se *esschema.StatusError
	if errors.As(err, &se) && (se.Status == 401 || se.Status == 403) {
		return fmt.Errorf("%w; check --es-api-key or --es-username/--es-password", err)
	}
	if errors.Is(err, esschema.ErrNotElasticsearch) {
		return fmt.Errorf("%w; check --es-url", err)
	}
	return err
}

// exportAssets writes every asset into dir.
func exportAssets(dir string, o esschema.Options, stdout io.Writer) error {
	files := []struct {
		path string
		data []byte
	}{
		{"kibana/heartwood.ndjson", dashboards.KibanaObjects()},
		{"prometheus/heartwood.rules.yml", dashboards.AlertRules()},
		{"prometheus/heartwood.rules.test.yml", dashboards.AlertRuleTests()},
		{"prometheus/grafana-heartwood.json", dashboards.GrafanaDashboard()},
		{"prometheus/prometheus.yml", dashboards.ScrapeConfig()},
	}
	for _, t := range o.ComponentTemplates() {
		files = append(files, struct {
			path string
			data []byte
		}{"elasticsearch/component_template/" + t.Name + ".json", t.Body})
	}
	for _, t := range o.IndexTemplates() {
		files = append(files, struct {
			path string
			data []byte
		}{"elasticsearch/index_template/" + t.Name + ".json", t.Body})
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	return nil
}
