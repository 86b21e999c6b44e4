package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/heartwood-ops/heartwood/dashboards"
)

// setup installs what SREs use around the agents: Kibana saved objects and
// Prometheus alert rules. The index templates are the shipper's and are
// installed by every agent at start.
func setup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("heartwood setup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kibanaURL := fs.String("kibana-url", "", "Kibana base URL (with /s/<space> for a space); imports the saved objects")
	apiKey := fs.String("kibana-api-key", "", "Kibana API key")
	user := fs.String("kibana-username", "", "Kibana user")
	pass := fs.String("kibana-password", "", "Kibana password")
	rules := fs.String("alert-rules", "", "write the Prometheus alert rules to this `file` (- for stdout)")
	objects := fs.String("kibana-objects", "", "write the Kibana saved objects NDJSON to this `file` (- for stdout) instead of importing")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *kibanaURL == "" && *rules == "" && *objects == "" {
		fmt.Fprintln(stderr, "heartwood setup: nothing to do: give --kibana-url, --kibana-objects or --alert-rules")
		return 2
	}
	for _, w := range []struct {
		path string
		data []byte
	}{{*rules, dashboards.AlertRules()}, {*objects, dashboards.KibanaObjects()}} {
		if w.path == "" {
			continue
		}
		if err := writeOut(w.path, w.data, stdout); err != nil {
			fmt.Fprintf(stderr, "heartwood setup: %v\n", err)
			return 1
		}
	}
	if *kibanaURL != "" {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		res, err := dashboards.InstallKibana(ctx, dashboards.KibanaOptions{
			URL: *kibanaURL, APIKey: *apiKey, Username: *user, Password: *pass,
			Client: &http.Client{Timeout: time.Minute},
		})
		if err != nil {
			fmt.Fprintf(stderr, "heartwood setup: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "imported %d Kibana objects into %s\n", res.SuccessCount, *kibanaURL)
	}
	return 0
}

func writeOut(path string, data []byte, stdout io.Writer) error {
	if path == "-" {
		_, err := stdout.Write(data)
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
