// Package config loads Heartwood's settings from defaults, an optional YAML
// file, the environment and command-line flags, in that order of precedence,
// with the same names everywhere.
//
// Settings are plain struct fields tagged with their name and help text:
//
//	Listen string `yaml:"listen" help:"address of the HTTP API"`
//
// A field named `listen` is the flag --listen, the environment variable
// HEARTWOOD_LISTEN and the key `listen:` in the file. Fields of nested structs
// join with a dot: registrar.enabled is --registrar.enabled,
// HEARTWOOD_REGISTRAR_ENABLED and `registrar: {enabled: ...}`. Fields tagged
// `secret:"true"` are redacted whenever the configuration is printed.
package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts every environment variable name.
const EnvPrefix = "HEARTWOOD_"

// Field is one setting found in a configuration struct.
type Field struct {
	// Name is the dotted name used for flags and in messages.
	Name string
	// Path is the list of YAML keys leading to the field.
	Path []string
	// Help is the one-line help text.
	Help string
	// Secret fields are redacted when printed.
	Secret bool
	// Value is the settable field itself.
	Value reflect.Value
}

// Env returns the environment variable that sets the field.
func (f Field) Env() string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return EnvPrefix + strings.ToUpper(r.Replace(f.Name))
}

var (
	durationType        = reflect.TypeOf(time.Duration(0))
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// Fields lists the settings of the struct that ptr points to, depth first in
// declaration order.
func Fields(ptr any) ([]Field, error) {
	v := reflect.ValueOf(ptr)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: want a pointer to a struct, got %T", ptr)
	}
	var out []Field
	if err := walk(v.Elem(), nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func walk(v reflect.Value, path []string, out *[]Field) error {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		fv := v.Field(i)
		if sf.Anonymous && name == "" && fv.Kind() == reflect.Struct && (opts == "inline" || sf.Tag.Get("yaml") == "") {
			// An embedded struct's settings sit at its parent's level.
			if err := walk(fv, path, out); err != nil {
				return err
			}
			continue
		}
		if name == "" || name == "-" || !sf.IsExported() {
			continue
		}
		p := append(append([]string(nil), path...), name)
		if fv.Kind() == reflect.Struct && !isScalar(fv) {
			if err := walk(fv, p, out); err != nil {
				return err
			}
			continue
		}
		if !isScalar(fv) && !(fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String) {
			return fmt.Errorf("config: field %s has unsupported type %s", strings.Join(p, "."), fv.Type())
		}
		*out = append(*out, Field{
			Name:   strings.Join(p, "."),
			Path:   p,
			Help:   sf.Tag.Get("help"),
			Secret: sf.Tag.Get("secret") == "true",
			Value:  fv,
		})
	}
	return nil
}

func isScalar(v reflect.Value) bool {
	if v.Type() == durationType || reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
		return true
	}
	switch v.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Uint64, reflect.Float64:
		return true
	}
	return false
}

// setString parses s into the field. For string lists it replaces the value
// with the comma-separated items of s.
func setString(f Field, s string) error {
	v := f.Value
	if tu, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return tu.UnmarshalText([]byte(s))
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want a duration such as 10s or 1m30s: %w", err)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("want a whole number, got %q", s)
		}
		v.SetInt(n)
	case reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("want a non-negative whole number, got %q", s)
		}
		v.SetUint(n)
	case reflect.Float64:
		n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("want a number, got %q", s)
		}
		v.SetFloat(n)
	case reflect.Slice:
		var items []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// format renders the field's current value as a string.
func format(f Field) string {
	v := f.Value
	if tm, ok := v.Interface().(encoding.TextMarshaler); ok {
		b, err := tm.MarshalText()
		if err != nil {
			return fmt.Sprintf("<%v>", err)
		}
		return string(b)
	}
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	if v.Kind() == reflect.Slice {
		return strings.Join(v.Interface().([]string), ",")
	}
	return fmt.Sprint(v.Interface())
}
