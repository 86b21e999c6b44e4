package template

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestBuild(t *testing.T) {
	for _, compat := range []bool{false, true} {
		b := Build(Options{Patterns: []string{"logs-*-*"}, Priority: 150, Compat: compat})
		var tpl struct {
			IndexPatterns []string       `json:"index_patterns"`
			Priority      int            `json:"priority"`
			DataStream    map[string]any `json:"data_stream"`
			Template      struct {
				Mappings struct {
					Properties map[string]json.RawMessage `json:"properties"`
				} `json:"mappings"`
			} `json:"template"`
		}
		if err := json.Unmarshal(b, &tpl); err != nil {
			t.Fatal(err)
		}
		if tpl.Priority <= 100 || tpl.DataStream == nil || tpl.IndexPatterns[0] != "logs-*-*" {
			t.Fatalf("bad template header: %s", b)
		}
		props := tpl.Template.Mappings.Properties
		if !strings.Contains(string(props["@timestamp"]), "date_nanos") {
			t.Fatalf("@timestamp not date_nanos: %s", props["@timestamp"])
		}
		hasOptional := strings.Contains(string(b), "constant_keyword") || strings.Contains(string(b), "match_only_text")
		if hasOptional == compat {
			t.Fatalf("compat=%v but optional types present=%v", compat, hasOptional)
		}
		if !strings.Contains(string(props["container"]), `"labels":{"ignore_above":1024,"type":"flattened"}`) {
			t.Fatalf("container.labels not flattened: %s", props["container"])
		}
	}
}

func TestNeedsCompat(t *testing.T) {
	if !NeedsCompat(errors.New(`put template: 400: mapper_parsing_exception: No handler for type [constant_keyword] declared on field [type]`)) {
		t.Fatal("missed the no-handler error")
	}
	if !NeedsCompat(errors.New(`elasticsearch status 400: illegal_argument_exception: composable template [x] template after composition is invalid`)) {
		t.Fatal("missed the composition error")
	}
	if NeedsCompat(errors.New("connection refused")) || NeedsCompat(nil) {
		t.Fatal("false positive")
	}
}
