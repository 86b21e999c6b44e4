package main

import (
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/heartwood-ops/heartwood/config"
)

// settingGroup is one section of the settings in `heartwood run -h` and in
// `heartwood config example`.
type settingGroup struct {
	title string
	// prefixes of the setting names in the group; the first group takes
	// the names no other group has.
	prefixes []string
}

var settingGroups = []settingGroup{
	{"Agent and API", nil},
	{"Docker", []string{"docker-"}},
	{"Consul and registrar", []string{"consul-", "registrar."}},
	{"Elasticsearch and shipper", []string{"es-", "shipper."}},
	{"Watchman", []string{"watchman."}},
}

// groupOf returns the title of the group a setting belongs to.
func groupOf(name string) string {
	for _, g := range settingGroups[1:] {
		for _, p := range g.prefixes {
			if strings.HasPrefix(name, p) {
				return g.title
			}
		}
	}
	return settingGroups[0].title
}

// runExamples is the line of examples under the settings.
const runExamples = `examples:
  heartwood run --registrar.enabled=false --es-url https://es1:9200 --es-api-key-file /run/secrets/es-key
  HEARTWOOD_WATCHMAN_DRY_RUN=false heartwood run --config /etc/heartwood/heartwood.yml
  heartwood config example > heartwood.yml; heartwood config check --config heartwood.yml
`

// printSettingsUsage writes the help of a command that takes the agent's
// settings: the settings by group, then the command's own flags, then
// examples (for run).
func printSettingsUsage(w io.Writer, name string, fs *flag.FlagSet, settings []config.Field) {
	fmt.Fprintf(w, "usage: heartwood %s [flags]\n\n", name)
	fmt.Fprintf(w, "Settings come from defaults, a YAML file (--config), HEARTWOOD_* environment\n"+
		"variables and flags, each overriding the one before. `heartwood config example`\n"+
		"prints a file with every setting; `heartwood config check` prints the values\n"+
		"the agent will use.\n")
	types := map[string]string{}
	for _, f := range settings {
		types[f.Name] = typeName(f.Value.Type())
	}
	byGroup := map[string][]*flag.Flag{}
	var own []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := types[f.Name]; ok {
			byGroup[groupOf(f.Name)] = append(byGroup[groupOf(f.Name)], f)
		} else if f.Name != "config" {
			own = append(own, f)
		}
	})
	if cf := fs.Lookup("config"); cf != nil {
		byGroup[settingGroups[0].title] = append([]*flag.Flag{cf}, byGroup[settingGroups[0].title]...)
	}
	for _, g := range settingGroups {
		if len(byGroup[g.title]) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, f := range byGroup[g.title] {
			typ, ok := types[f.Name]
			if !ok {
				typ, _ = flag.UnquoteUsage(f)
			}
			printFlag(w, f, typ)
		}
	}
	if len(own) > 0 {
		fmt.Fprintf(w, "\nheartwood %s:\n", name)
		for _, f := range own {
			typ, _ := flag.UnquoteUsage(f)
			printFlag(w, f, typ)
		}
	}
	if name == "run" {
		fmt.Fprintf(w, "\n%s", runExamples)
	}
}

// printFlag writes one flag: its name and value type, then its help.
func printFlag(w io.Writer, f *flag.Flag, typ string) {
	_, help := flag.UnquoteUsage(f)
	line := "  --" + f.Name
	if typ != "" {
		line += " " + typ
	}
	if d := f.DefValue; d != "" && d != "false" && d != "0" && d != "0s" && d != "0B" {
		help += " (default " + d + ")"
	}
	fmt.Fprintf(w, "%s\n      %s\n", line, help)
}

// typeName is how the help names a setting's value.
func typeName(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "duration"
	case t == reflect.TypeOf(config.ByteSize(0)):
		return "size"
	}
	switch t.Kind() {
	case reflect.Bool:
		return ""
	case reflect.Slice:
		return "list"
	case reflect.Int, reflect.Int64, reflect.Uint64:
		return "n"
	case reflect.Float64:
		return "number"
	}
	return "string"
}
