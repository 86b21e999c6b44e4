// Command heartwood is the per-node ops agent for Docker Swarm clusters:
// it registers containers in Consul, ships their logs to Elasticsearch and
// measures them, pausing idle training containers that opted in.
//
//	heartwood run [flags]            run the agent
//	heartwood config check [flags]   validate the configuration and print it
//	heartwood config example         print a configuration file with every setting
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
	"strings"
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

// command is one subcommand of heartwood.
type command struct {
	name, args, summary string
	run                 func(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int
}

// commands lists every command, in the order of the usage text.
func commands() []command {
	client := func(name string) func(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
		return func(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
			return clientCommand(ctx, name, args, environ, stdout, stderr)
		}
	}
	return []command{
		{"run", "", "run the agent (heartwood run -h: every setting, by subsystem)",
			func(ctx context.Context, args, environ []string, _, stderr io.Writer) int {
				return runAgent(ctx, args, environ, stderr)
			}},
		{"config check", "", "validate the configuration and print the values the agent will use, secrets redacted",
			func(_ context.Context, args, environ []string, stdout, stderr io.Writer) int {
				return configCheck(args, environ, stdout, stderr)
			}},
		{"config example", "", "print a configuration file with every setting, its help and its default",
			func(_ context.Context, args, _ []string, stdout, stderr io.Writer) int {
				return configExample(args, stdout, stderr)
			}},
		{"ps", "", "list the node's containers as the local agent sees them", client("ps")},
		{"pause", "NAME", "pause a container through the local agent", client("pause")},
		{"wake", "NAME", "wake a paused container through the local agent (--force: one the watchman did not pause)", client("wake")},
		{"setup", "", "install the Elasticsearch templates, import the Kibana dashboards, write the Prometheus alert rules", setup},
		{"doctor", "", "check what the agent needs on this node, one line per check", doctorCmd},
		{"healthcheck", "", "exit 0 when the local agent is ready, 1 otherwise (container health check)", healthcheck},
		{"version", "", "print the version",
			func(_ context.Context, _, _ []string, stdout, _ io.Writer) int {
				fmt.Fprintf(stdout, "heartwood %s (%s)\n", version, revision)
				return 0
			}},
	}
}

// usage is the top-level help.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: heartwood <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-16s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	b.WriteString("\n`heartwood <command> -h` describes a command's flags.\n")
	return b.String()
}

// run is main without the process exit, so that tests can call it.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage())
		return 0
	case "--version", "-version":
		args = append([]string{"version"}, args[1:]...)
	}
	// Two-word commands (config check) first.
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c.run(ctx, args[len(words):], environ, stdout, stderr)
		}
	}
	if args[0] == "config" {
		fmt.Fprintln(stderr, "usage: heartwood config check|example [flags]")
		if len(args) > 1 && isHelp(args[1]) {
			return 0
		}
		return 2
	}
	fmt.Fprintf(stderr, "heartwood: unknown command %q\n\n%s", args[0], usage())
	return 2
}

// isHelp reports whether a is a request for help.
func isHelp(a string) bool {
	return a == "-h" || a == "-help" || a == "--help" || a == "--h"
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
	// the full help, the settings by group.
	fields, err := config.Fields(&cfg)
	if err != nil {
		return cfg, err
	}
	full := func() { printSettingsUsage(stderr, name, fs, fields) }
	fs.Usage = func() { fmt.Fprintf(stderr, "run `heartwood %s -h` for the settings\n", name) }
	for _, a := range args {
		if a == "--" {
			break
		}
		if isHelp(a) {
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
	// Repeats held back when the agent stops are counted in a last line.
	if th, ok := logger.Handler().(*logthrottle.Handler); ok {
		defer th.Flush(context.WithoutCancel(ctx))
	}
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

// configExample prints a configuration file with every setting, its help
// and its default.
func configExample(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("heartwood config example", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: heartwood config example > heartwood.yml\n\n"+
			"Prints a configuration file with every setting, its help, its environment\nvariable and its default.")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	cfg := agent.DefaultConfig()
	out, err := config.Example(&cfg, groupOf)
	if err != nil {
		fmt.Fprintf(stderr, "heartwood: %v\n", err)
		return 1
	}
	_, _ = stdout.Write(out)
	return 0
}

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
