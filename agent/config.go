package agent

import (
	"errors"
	"fmt"
	"os"

	"github.com/heartwood-ops/heartwood/internal/esschema"
	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/registrar"
	"github.com/heartwood-ops/heartwood/shipper"
	"github.com/heartwood-ops/heartwood/watchman"
)

// Config is the agent's whole configuration: its own settings at the top
// level and each subsystem's under its name.
type Config struct {
	Core      `yaml:",inline"`
	Registrar registrar.Config `yaml:"registrar"`
	Shipper   shipper.Config   `yaml:"shipper"`
	Watchman  watchman.Config  `yaml:"watchman"`
}

// DefaultConfig returns the defaults of every setting.
func DefaultConfig() Config {
	return Config{
		Core:      DefaultCore(),
		Registrar: registrar.DefaultConfig(),
		Shipper:   shipper.DefaultConfig(),
		Watchman:  watchman.DefaultConfig(),
	}
}

// Resolve fills the settings whose default depends on the host or on
// other settings, so that what `config check` prints is what the agent
// uses: node-name defaults to the hostname, self-container-id to the
// container the process runs in, the logs template's patterns to the
// shipper's dataset.
func (c *Config) Resolve() error {
	if c.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("node-name: not set and hostname unknown: %w", err)
		}
		c.NodeName = h
	}
	if c.SelfContainerID == "" {
		c.SelfContainerID = inventory.DetectSelfID("/proc")
	}
	if len(c.Shipper.Template.Patterns) == 0 {
		c.Shipper.Template.Patterns = esschema.LogPatterns(c.Shipper.Dataset)
	}
	return nil
}

// Validate checks every setting and reports all problems at once. A
// disabled subsystem's settings are not checked.
func (c *Config) Validate() error {
	errs := []error{c.Core.Validate()}
	if c.Registrar.Enabled {
		errs = append(errs, c.Registrar.Validate())
	}
	if c.Shipper.Enabled {
		errs = append(errs, c.Shipper.Validate())
	}
	if c.Watchman.Enabled {
		errs = append(errs, c.Watchman.Validate())
	}
	return errors.Join(errs...)
}
