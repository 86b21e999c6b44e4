// Package policy turns a container's heartwood.watchman.* labels and the
// node's defaults into an idle policy, and decides from successive samples
// whether the container has been idle for its whole window.
package policy

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Label names. They are a public interface: do not rename them.
const (
	LabelPrefix = "heartwood.watchman."
	LabelEnable = LabelPrefix + "enable"
	LabelWindow = LabelPrefix + "window"
	LabelMinAge = LabelPrefix + "min-age"
	LabelCPU    = LabelPrefix + "cpu"
	LabelNet    = LabelPrefix + "net"
	LabelDisk   = LabelPrefix + "disk"
	LabelGPU    = LabelPrefix + "gpu"
	LabelAction = LabelPrefix + "action"
	LabelDryRun = LabelPrefix + "dry-run"
	LabelGroup  = LabelPrefix + "group"
)

// Action is what happens to an idle container.
type Action string

// The actions.
const (
	ActionPause  Action = "pause"
	ActionStop   Action = "stop"
	ActionNotify Action = "notify"
)

// ParseAction validates an action name.
func ParseAction(s string) (Action, error) {
	switch a := Action(strings.ToLower(strings.TrimSpace(s))); a {
	case ActionPause, ActionStop, ActionNotify:
		return a, nil
	}
	return "", fmt.Errorf("unknown action %q (want pause, stop or notify)", s)
}

// Defaults are the node's (or cluster's) policy values used where a
// container has no label.
type Defaults struct {
	Window time.Duration `json:"window"`
	MinAge time.Duration `json:"min_age"`
	// CPU is in cores, Net and Disk in bytes per second, GPU in percent.
	CPU    float64 `json:"cpu"`
	Net    float64 `json:"net"`
	Disk   float64 `json:"disk"`
	GPU    float64 `json:"gpu"`
	Action Action  `json:"action"`
	DryRun bool    `json:"dry_run"`
}

// Policy is one container's effective idle policy.
type Policy struct {
	Enabled bool `json:"enabled"`
	Defaults
	// Group is the explicit group label, empty when unset.
	Group string `json:"group,omitempty"`
}

// MaxGroupLen bounds the group label.
const MaxGroupLen = 128

// Parse builds the policy from labels over d. All malformed heartwood.watchman.*
// labels are reported together; the returned policy is then not usable and
// the container must not be acted on.
func Parse(labels map[string]string, d Defaults) (Policy, error) {
	p := Policy{Defaults: d}
	var errs []error
	keys := make([]string, 0, 4)
	for k := range labels {
		if strings.HasPrefix(k, LabelPrefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.TrimSpace(labels[k])
		var err error
		switch k {
		case LabelEnable:
			p.Enabled, err = strconv.ParseBool(v)
		case LabelDryRun:
			p.DryRun, err = strconv.ParseBool(v)
		case LabelWindow:
			p.Window, err = positiveDuration(v)
		case LabelMinAge:
			p.MinAge, err = nonNegativeDuration(v)
		case LabelCPU:
			p.CPU, err = rate(v, 0, 4096)
		case LabelNet:
			p.Net, err = rate(v, 0, math.MaxFloat64)
		case LabelDisk:
			p.Disk, err = rate(v, 0, math.MaxFloat64)
		case LabelGPU:
			p.GPU, err = rate(v, 0, 100)
		case LabelAction:
			p.Action, err = ParseAction(v)
		case LabelGroup:
			switch {
			case v == "":
				err = errors.New("empty group")
			case len(v) > MaxGroupLen:
				err = fmt.Errorf("longer than %d bytes", MaxGroupLen)
			default:
				p.Group = v
			}
		default:
			err = errors.New("unknown label")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", k, labels[k], unwrapNum(err)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		p.Enabled = false
		return p, err
	}
	return p, nil
}

// unwrapNum shortens strconv's errors ("strconv.ParseBool: parsing ...").
func unwrapNum(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return ne.Err
	}
	return err
}

func positiveDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("not a duration")
	}
	if d <= 0 {
		return 0, errors.New("must be > 0")
	}
	return d, nil
}

func nonNegativeDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("not a duration")
	}
	if d < 0 {
		return 0, errors.New("must be >= 0")
	}
	return d, nil
}

func rate(s string, lo, hi float64) (float64, error) {
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, errors.New("not a number")
	}
	if x < lo || x > hi {
		return 0, fmt.Errorf("must be between %g and %g", lo, hi)
	}
	return x, nil
}
