package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Loader fills a configuration struct from a file, the environment and
// flags. Create it with NewLoader, register its flags on a FlagSet, parse
// the arguments, then call Load.
type Loader struct {
	target any
	fields []Field
	byName map[string]Field
	// flagValues holds what the command line said, applied last.
	flagValues map[string][]string
	configFile string
}

// NewLoader returns a loader for the struct ptr points to. The struct's
// current values are the defaults.
func NewLoader(ptr any) (*Loader, error) {
	fields, err := Fields(ptr)
	if err != nil {
		return nil, err
	}
	l := &Loader{target: ptr, fields: fields, byName: make(map[string]Field), flagValues: make(map[string][]string)}
	for _, f := range fields {
		if _, dup := l.byName[f.Name]; dup {
			return nil, fmt.Errorf("config: setting %s declared twice", f.Name)
		}
		l.byName[f.Name] = f
	}
	return l, nil
}

// RegisterFlags adds --config and one flag per setting to fs.
func (l *Loader) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&l.configFile, "config", os.Getenv(EnvPrefix+"CONFIG"),
		"YAML configuration `file` (env "+EnvPrefix+"CONFIG)")
	for _, f := range l.fields {
		help := f.Help
		if help == "" {
			help = f.Name
		}
		help += " (env " + f.Env() + ")"
		fs.Var(&flagValue{l: l, f: f}, f.Name, help)
	}
}

// flagValue records a flag's raw values; they are applied in Load after the
// file and environment.
type flagValue struct {
	l *Loader
	f Field
}

func (v *flagValue) String() string {
	if v == nil || v.l == nil {
		return ""
	}
	return format(v.f)
}

func (v *flagValue) Set(s string) error {
	// Check the syntax now so flag parsing reports the bad flag itself.
	probe := Field{Name: v.f.Name, Value: reflect.New(v.f.Value.Type()).Elem()}
	if err := setString(probe, s); err != nil {
		return err
	}
	v.l.flagValues[v.f.Name] = append(v.l.flagValues[v.f.Name], s)
	return nil
}

func (v *flagValue) IsBoolFlag() bool { return v.f.Value.Kind() == reflect.Bool }

// Load applies the file (if --config or HEARTWOOD_CONFIG named one), then
// the environment, then the flags. Errors name the setting and its source.
func (l *Loader) Load(environ []string) error {
	if l.configFile != "" {
		data, err := os.ReadFile(l.configFile)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if err := l.LoadYAML(data); err != nil {
			return fmt.Errorf("config file %s: %w", l.configFile, err)
		}
	}
	if err := l.LoadEnv(environ); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(l.flagValues)) {
		f := l.byName[name]
		vals := l.flagValues[name]
		if f.Value.Kind() == reflect.Slice {
			// Repeated flags add up; each may also hold a comma list.
			if err := setString(f, strings.Join(vals, ",")); err != nil {
				return fmt.Errorf("--%s: %w", name, err)
			}
			continue
		}
		if err := setString(f, vals[len(vals)-1]); err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
	}
	return nil
}

// LoadEnv applies HEARTWOOD_* variables from environ (KEY=VALUE strings).
// A HEARTWOOD_ variable that names no setting is an error, so typos do not
// pass silently.
func (l *Loader) LoadEnv(environ []string) error {
	known := make(map[string]Field, len(l.fields))
	for _, f := range l.fields {
		known[f.Env()] = f
	}
	var errs []error
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, EnvPrefix) || k == EnvPrefix+"CONFIG" {
			continue
		}
		f, ok := known[k]
		if !ok {
			if isReservedEnv(k) {
				continue
			}
			errs = append(errs, fmt.Errorf("environment %s: no such setting (see `heartwood run -h`)", k))
			continue
		}
		if err := setString(f, v); err != nil {
			errs = append(errs, fmt.Errorf("environment %s (%s): %w", k, f.Name, err))
		}
	}
	return errors.Join(errs...)
}

// isReservedEnv reports variables with our prefix that are not settings:
// the test environment's and the dev scripts'.
func isReservedEnv(k string) bool {
	for _, p := range []string{EnvPrefix + "TEST_", EnvPrefix + "CACHE", EnvPrefix + "RUN_DIR",
		EnvPrefix + "CONSUL_BIN", EnvPrefix + "SERVICES_SCRIPT", EnvPrefix + "BENCH_"} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// LoadYAML applies a YAML document. Unknown keys are errors.
func (l *Loader) LoadYAML(data []byte) error {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file
		}
		return fmt.Errorf("parse YAML: %w", err)
	}
	if len(root.Content) == 0 {
		return nil
	}
	return l.applyNode(root.Content[0], nil)
}

func (l *Loader) applyNode(n *yaml.Node, path []string) error {
	if n.Kind == yaml.AliasNode {
		return fmt.Errorf("line %d: YAML aliases are not supported", n.Line)
	}
	if n.Kind != yaml.MappingNode {
		where := "the top level"
		if len(path) > 0 {
			where = strings.Join(path, ".")
		}
		return fmt.Errorf("line %d: %s must be a mapping of keys to values", n.Line, where)
	}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		p := append(append([]string(nil), path...), key.Value)
		name := strings.Join(p, ".")
		if f, ok := l.byName[name]; ok {
			if err := applyScalar(f, val); err != nil {
				errs = append(errs, fmt.Errorf("line %d: %s: %w", val.Line, name, err))
			}
			continue
		}
		if l.hasPrefix(name + ".") {
			if err := l.applyNode(val, p); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		errs = append(errs, fmt.Errorf("line %d: unknown setting %s", key.Line, name))
	}
	return errors.Join(errs...)
}

func (l *Loader) hasPrefix(prefix string) bool {
	for name := range l.byName {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

func applyScalar(f Field, n *yaml.Node) error {
	if f.Value.Kind() == reflect.Slice && f.Value.Type().Elem().Kind() == reflect.String {
		switch n.Kind {
		case yaml.SequenceNode:
			items := make([]string, 0, len(n.Content))
			for _, c := range n.Content {
				if c.Kind != yaml.ScalarNode {
					return fmt.Errorf("want a list of strings")
				}
				items = append(items, c.Value)
			}
			f.Value.Set(reflect.ValueOf(items))
			return nil
		case yaml.ScalarNode:
			return setString(f, n.Value)
		}
		return fmt.Errorf("want a list of strings")
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a single value")
	}
	return setString(f, n.Value)
}

// Effective renders the configuration as YAML with secrets redacted: the
// fields tagged secret, and the user information of every URL.
func Effective(ptr any) ([]byte, error) {
	fields, err := Fields(ptr)
	if err != nil {
		return nil, err
	}
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range fields {
		parent := root
		for _, key := range f.Path[:len(f.Path)-1] {
			parent = childMapping(parent, key)
		}
		parent.Content = append(parent.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: f.Path[len(f.Path)-1]},
			valueNode(f))
	}
	return yaml.Marshal(root)
}

func childMapping(parent *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(parent.Content); i += 2 {
		if parent.Content[i].Value == key {
			return parent.Content[i+1]
		}
	}
	child := &yaml.Node{Kind: yaml.MappingNode}
	parent.Content = append(parent.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, child)
	return child
}

func valueNode(f Field) *yaml.Node {
	if f.Secret && !f.Value.IsZero() {
		return &yaml.Node{Kind: yaml.ScalarNode, Value: "<redacted>"}
	}
	if f.Value.Kind() == reflect.Slice {
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, s := range f.Value.Interface().([]string) {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: redactIfURL(s)})
		}
		return n
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: format(f)}
	if f.Value.Kind() == reflect.String {
		n.Value = redactIfURL(n.Value)
	}
	if f.Value.Kind() == reflect.String || f.Value.Type() == durationType {
		n.Style = yaml.DoubleQuotedStyle
		if f.Value.Type() == durationType {
			n.Style = 0
		}
	}
	return n
}
