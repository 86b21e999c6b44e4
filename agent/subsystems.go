package agent

import "github.com/heartwood-ops/heartwood/agent/api"

// buildSubsystems creates the enabled subsystems.
func (a *Agent) buildSubsystems() error { return nil }

// controller returns the watchman's pause/wake control, or nil.
func (a *Agent) controller() api.Controller { return nil }
