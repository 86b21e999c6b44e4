package agent

import "errors"

// Config is the agent's whole configuration: its own settings at the top
// level and each subsystem's under its name.
type Config struct {
	Core `yaml:",inline"`
}

// DefaultConfig returns the defaults of every setting.
func DefaultConfig() Config {
	return Config{Core: DefaultCore()}
}

// Validate checks every setting and reports all problems at once.
func (c *Config) Validate() error {
	return errors.Join(c.Core.Validate())
}
