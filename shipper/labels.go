package shipper

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/shipper/multiline"
)

// The container labels that control shipping (a public interface).
const (
	LabelEnable           = "heartwood.logs.enable"
	LabelMultilinePattern = "heartwood.logs.multiline.pattern"
	LabelMultilineNegate  = "heartwood.logs.multiline.negate"
	LabelMultilineMatch   = "heartwood.logs.multiline.match"
	LabelMultilinePreset  = "heartwood.logs.multiline.preset"
	LabelJSON             = "heartwood.logs.json"
	LabelDataset          = "heartwood.logs.dataset"
	LabelNamespace        = "heartwood.logs.namespace"
)

// settings are one container's shipping settings, from config and labels.
type settings struct {
	enabled   bool
	json      bool
	multiline multiline.Config
	dataset   string
	namespace string
	// problems are label values that were ignored, for the log.
	problems []string
}

func (s settings) index() string { return "logs-" + s.dataset + "-" + s.namespace }

func settingsFor(cfg Config, c *inventory.Container) settings {
	s := settings{enabled: true, dataset: cfg.Dataset, namespace: cfg.Namespace}
	l := c.Labels
	boolLabel := func(key string, def bool) bool {
		v, ok := l[key]
		if !ok {
			return def
		}
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			s.problems = append(s.problems, fmt.Sprintf("%s=%q is not a boolean", key, v))
			return def
		}
		return b
	}
	s.enabled = boolLabel(LabelEnable, true)
	s.json = boolLabel(LabelJSON, false)
	if v, ok := l[LabelDataset]; ok {
		if err := validDataStreamPart(v); err != nil {
			s.problems = append(s.problems, fmt.Sprintf("%s: %v", LabelDataset, err))
		} else if reservedDataset(v) {
			s.problems = append(s.problems, fmt.Sprintf("%s: %q is reserved for the agent's own streams", LabelDataset, v))
		} else {
			s.dataset = v
		}
	}
	if v, ok := l[LabelNamespace]; ok {
		if err := validDataStreamPart(v); err != nil {
			s.problems = append(s.problems, fmt.Sprintf("%s: %v", LabelNamespace, err))
		} else {
			s.namespace = v
		}
	}
	if s.index() == cfg.Output.deadLetterStream() {
		s.problems = append(s.problems, fmt.Sprintf("%s/%s: %s is the dead-letter stream", LabelDataset, LabelNamespace, s.index()))
		s.dataset, s.namespace = cfg.Dataset, cfg.Namespace
	}
	ml := multiline.Config{
		Pattern:  l[LabelMultilinePattern],
		Preset:   strings.ToLower(strings.TrimSpace(l[LabelMultilinePreset])),
		Negate:   boolLabel(LabelMultilineNegate, false),
		Match:    multiline.Match(strings.ToLower(strings.TrimSpace(l[LabelMultilineMatch]))),
		MaxLines: cfg.Multiline.MaxLines,
		MaxBytes: int(cfg.MaxEventBytes),
		Timeout:  cfg.Multiline.Timeout,
	}
	if ml.Enabled() {
		if _, err := multiline.New(ml); err != nil {
			s.problems = append(s.problems, err.Error())
		} else {
			s.multiline = ml
		}
	}
	return s
}

// reservedDataset reports whether a dataset belongs to the agent's own
// streams (dead letters, watchman decisions, ...): "heartwood" and
// "heartwood.*". Container labels cannot name them.
func reservedDataset(ds string) bool {
	return ds == "heartwood" || strings.HasPrefix(ds, "heartwood.")
}
