// Command heartwood is the per-node ops agent for Docker Swarm clusters:
// it registers containers in Consul, ships their logs to Elasticsearch and
// measures them, pausing idle training containers that opted in.
//
//	heartwood run [flags]            run the agent
//	heartwood config check [flags]   validate the configuration and print it
//	heartwood ps                     list containers as the local agent sees them
//	heartwood pause NAME|ID          pause a container through the local agent
//	heartwood wake [--force] NAME|ID wake a paused container through the local agent
//	heartwood setup [flags]          import Kibana dashboards, write Prometheus alert rules
//	heartwood doctor [flags]         check what the agent needs on this node
//	heartwood healthcheck [flags]    exit 0 when the local agent is ready (container health check)
//	heartwood version                print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/heartwood-ops/heartwood/agent"
	"github.com/heartwood-ops/heartwood/config"
	"github.com/heartwood-ops/heartwood/internal/logthrottle"
)

// Set at build time with -ldflags "-X main.version=... -X main.revision=...".
var (
	version  = "dev"
	revision = "unknown"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

const usage = `usage: heartwood <command> [flags]

commands:
  run            run the agent (see heartwood run -h for every setting)
  config check   validate the configuration and print the effective settings, secrets redacted
  ps             list the node's containers as the local agent sees them
  pause NAME     pause a container through the local agent
  wake NAME      wake a paused container through the local agent (--force: one the watchman did not pause)
  setup          import the Kibana dashboards and write the Prometheus alert rules
  doctor         check what the agent needs on this node, one line per check
  healthcheck    exit 0 when the local agent is ready, 1 otherwise (container health check)
  version        print the version
`

// run is main without the process exit, so that tests can call it.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runAgent(ctx, rest, environ, stderr)
	case "config":
		if len(rest) == 0 || rest[0] != "check" {
			fmt.Fprintln(stderr, "usage: heartwood config check [flags]")
			return 2
		}
		return configCheck(rest[1:], environ, stdout, stderr)
	case "setup":
		return setup(ctx, rest, environ, stdout, stderr)
	case "doctor":
		return doctorCmd(ctx, rest, environ, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, rest, environ, stdout, stderr)
	case "ps", "pause", "wake":
		return clientCommand(ctx, cmd, rest, environ, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "heartwood %s (%s)\n", version, revision)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "heartwood: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// usageError is a command-line error the flag package already printed,
// with a hint.
type usageError struct{ error }

// configFailed reports a loadConfig error and returns the exit code: 0 for
// -h, 2 otherwise.
func configFailed(stderr io.Writer, cmd string, err error) int {
	var ue usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
	default:
		fmt.Fprintf(stderr, "heartwood %s: invalid configuration:\n%v\n", cmd, err)
	}
	return 2
}

// loadConfig parses flags, the config file and the environment into an
// agent configuration; extra registers a command's own flags.
func loadConfig(name string, args, environ []string, stderr io.Writer, extra ...func(*flag.FlagSet)) (agent.Config, error) {
	cfg := agent.DefaultConfig()
	loader, err := config.NewLoader(&cfg)
	if err != nil {
		return cfg, err
	}
	fs := flag.NewFlagSet("heartwood "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	loader.RegisterFlags(fs)
	for _, f := range extra {
		f(fs)
	}
	// A bad value gets its error and a hint, not every setting; -h gets
	// the full help.
	full := fs.Usage
	fs.Usage = func() { fmt.Fprintf(stderr, "run `heartwood %s -h` for the settings\n", name) }
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			fs.Usage = full
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, usageError{err} // the flag package printed it
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := loader.Load(environ); err != nil {
		return cfg, err
	}
	if cfg.ConsulToken == "" && cfg.ConsulTokenFile == "" {
		cfg.ConsulToken = lookupEnv(environ, "CONSUL_HTTP_TOKEN")
	}
	return cfg, cfg.Validate()
}

func runAgent(ctx context.Context, args, environ []string, stderr io.Writer) int {
	cfg, err := loadConfig("run", args, environ, stderr)
	if err != nil {
		return configFailed(stderr, "run", err)
	}
	logger := newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	a, err := agent.New(cfg, agent.BuildInfo{Version: version, Revision: revision}, logger)
	if err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := a.Run(ctx); err != nil {
		logger.Error("agent stopped with an error", "err", err)
		return 1
	}
	return 0
}

func configCheck(args, environ []string, stdout, stderr io.Writer) int {
	cfg, err := loadConfig("config check", args, environ, stderr)
	if err != nil {
		return configFailed(stderr, "config check", err)
	}
	if err := cfg.Resolve(); err != nil {
		fmt.Fprintf(stderr, "heartwood: %v\n", err)
		return 2
	}
	out, err := config.Effective(&cfg)
	if err != nil {
		fmt.Fprintf(stderr, "heartwood: %v\n", err)
		return 1
	}
	fmt.Fprintln(stderr, "configuration is valid")
	_, _ = stdout.Write(out)
	return 0
}

// repeatWindow is how long a repeated warning is held back after it was
// written (Docker unreachable every second is one line a minute, with the
// count).
const repeatWindow = time.Minute

func newLogger(level, format string, w io.Writer) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // validated before
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(logthrottle.New(h, repeatWindow, slog.LevelWarn))
}

func lookupEnv(environ []string, key string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := cut(environ[i]); ok && k == key {
			return v
		}
	}
	return ""
}

func cut(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return "", "", false
}
