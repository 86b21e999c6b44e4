package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck asks the local agent whether it is ready (GET /readyz) or, with
// --live, alive (GET /healthz), and exits 0 on 200 and 1 otherwise. It is the
// container health check of the FROM scratch image, which has no shell or
// curl: HEALTHCHECK CMD ["/heartwood", "healthcheck"].
func healthcheck(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("heartwood healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("agent", envOr(environ, "HEARTWOOD_LISTEN", "127.0.0.1:9321"), "the local agent's API address (env HEARTWOOD_LISTEN; an unspecified host means loopback)")
	live := fs.Bool("live", false, "check liveness (/healthz) instead of readiness (/readyz)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: heartwood healthcheck [--agent host:port] [--live] [--timeout 3s]")
		return 2
	}
	target, err := probeAddr(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "heartwood healthcheck: %v\n", err)
		return 2
	}
	path := "/readyz"
	if *live {
		path = "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+target+path, nil)
	if err != nil {
		fmt.Fprintf(stderr, "heartwood healthcheck: %v\n", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "heartwood healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "heartwood healthcheck: %s %s: %s\n", path, resp.Status, body)
		return 1
	}
	fmt.Fprintf(stdout, "%s ok\n", path)
	return 0
}

// probeAddr turns a listen address into one to connect to: an empty or
// unspecified host (":9321", "0.0.0.0:9321", "[::]:9321") means loopback.
func probeAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("agent address %q: %v", listen, err)
	}
	if host == "" {
		host = "127.0.0.1"
	} else if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if ip.To4() != nil {
			host = "127.0.0.1"
		} else {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port), nil
}
