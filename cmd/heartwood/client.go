package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/heartwood-ops/heartwood/agent/api"
	"github.com/heartwood-ops/heartwood/inventory"
)

// clientCommand runs ps, pause and wake against the local agent's API.
func clientCommand(ctx context.Context, cmd string, args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("heartwood "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("agent", envOr(environ, "HEARTWOOD_LISTEN", "127.0.0.1:9321"), "the local agent's API address (env HEARTWOOD_LISTEN)")
	token := fs.String("token", lookupEnv(environ, "HEARTWOOD_API_TOKEN"), "API bearer token (env HEARTWOOD_API_TOKEN)")
	tokenFile := fs.String("token-file", lookupEnv(environ, "HEARTWOOD_API_TOKEN_FILE"), "file holding the API bearer token (env HEARTWOOD_API_TOKEN_FILE)")
	reason := fs.String("reason", "cli", "reason recorded with the action")
	force := fs.Bool("force", false, "wake: also wake a container the watchman did not pause itself")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "heartwood %s: %v\n", cmd, err)
			return 2
		}
		*token = strings.TrimSpace(string(b))
	}
	base := "http://" + *addr
	hc := &http.Client{Timeout: 3 * time.Minute}
	if cmd == "ps" {
		if fs.NArg() != 0 {
			fmt.Fprintln(stderr, "usage: heartwood ps [--agent host:port]")
			return 2
		}
		return ps(ctx, hc, base, *token, stdout, stderr)
	}
	if *force && cmd != "wake" {
		fmt.Fprintln(stderr, "heartwood: --force applies to wake only")
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "usage: heartwood %s [--agent host:port] NAME|ID\n", cmd)
		return 2
	}
	q := url.Values{"reason": {*reason}}
	if *force {
		q.Set("force", "true")
	}
	u := fmt.Sprintf("%s/v1/containers/%s/%s?%s", base, url.PathEscape(fs.Arg(0)), cmd, q.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		fmt.Fprintf(stderr, "heartwood %s: %v\n", cmd, err)
		return 1
	}
	req.Header.Set(api.RequestHeader, "1")
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "heartwood %s: is the agent running at %s? %v\n", cmd, *addr, err)
		return 1
	}
	defer resp.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		fmt.Fprintf(stderr, "heartwood %s: %s: unreadable answer: %v\n", cmd, resp.Status, err)
		return 1
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "heartwood %s %s: %s\n", cmd, fs.Arg(0), body["error"])
		return 1
	}
	fmt.Fprintf(stdout, "%s %s\n", body["name"], body["result"])
	return 0
}

// psEntry is the part of GET /v1/containers that ps prints.
type psEntry struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Image string `json:"image"`
	State struct {
		Status string `json:"status"`
		Health string `json:"health"`
	} `json:"state"`
	Subsystems map[string]json.RawMessage `json:"subsystems"`
}

func ps(ctx context.Context, hc *http.Client, base, token string, stdout, stderr io.Writer) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/containers", nil)
	if err != nil {
		fmt.Fprintf(stderr, "heartwood ps: %v\n", err)
		return 1
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "heartwood ps: is the agent running at %s? %v\n", strings.TrimPrefix(base, "http://"), err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		fmt.Fprintf(stderr, "heartwood ps: %s: %s\n", resp.Status, body["error"])
		return 1
	}
	var list []psEntry
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		fmt.Fprintf(stderr, "heartwood ps: %s: %v\n", resp.Status, err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tNAME\tIMAGE\tSTATUS\tHEALTH\tWATCHMAN")
	for _, c := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", inventory.ShortID(c.ID), c.Name, c.Image, c.State.Status, dash(c.State.Health), watchmanState(c.Subsystems["watchman"]))
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	return 0
}

// watchmanState extracts a short state word from the watchman's view.
func watchmanState(raw json.RawMessage) string {
	var v struct {
		State string `json:"state"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil || v.State == "" {
		return "-"
	}
	return v.State
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func envOr(environ []string, key, def string) string {
	if v := lookupEnv(environ, key); v != "" {
		return v
	}
	return def
}
