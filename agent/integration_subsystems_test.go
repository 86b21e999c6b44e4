//go:build integration

package agent_test

import "github.com/heartwood-ops/heartwood/agent"

// disableSubsystems turns every subsystem off, for tests of the agent core.
func disableSubsystems(cfg *agent.Config) {
	cfg.Registrar.Enabled = false
	cfg.Shipper.Enabled = false
	cfg.Watchman.Enabled = false
}
