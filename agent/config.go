package agent

import (
	"errors"

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
