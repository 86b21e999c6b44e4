package esschema

// AgentUnits are the agent's supervised units whose restarts the health
// documents count (heartwood.agent.restarts.<unit>).
var AgentUnits = []string{"inventory", "registrar", "shipper", "watchman", "health"}

// agentFields are the fields of the agents' health documents, one per node
// and period in metrics-heartwood.agent-<namespace>: shipping lag and
// losses, registration drift, Consul errors and restarts. In a
// time-series data stream the node (host.name) is the dimension; running
// totals since the agent started are counters, the rest gauges.
func agentFields(f Features) m {
	metric := func(t, kind string) m {
		x := m{"type": t}
		if f.TimeSeries {
			x["time_series_metric"] = kind
		}
		return x
	}
	gauge := func(t string) m { return metric(t, "gauge") }
	counter := func() m { return metric("long", "counter") }
	restarts := m{"total": counter()}
	for _, u := range AgentUnits {
		restarts[u] = counter()
	}
	return m{
		"heartwood": obj(m{"agent": obj(m{
			"started":        m{"type": "date"},
			"uptime_seconds": gauge("double"),
			"restarts":       obj(restarts),
			"docker":         obj(m{"connected": m{"type": "boolean"}, "containers": gauge("long")}),
			"shipper": obj(m{
				"lag_seconds": gauge("double"), "behind_bytes": gauge("long"),
				"retries": counter(), "dead_letters": counter(), "dead_letter_failures": counter(),
				"gaps": counter(), "lost_bytes": counter(),
			}),
			"registrar": obj(m{
				"desired": gauge("long"), "registered": gauge("long"), "in_sync": gauge("long"),
				"drift": gauge("long"), "consul_errors": counter(),
			}),
			"watchman": obj(m{"kv_errors": counter()}),
		})}),
	}
}

// agentTimeSeriesFields are what a time-series data stream changes in the
// health documents: the node is the dimension, @timestamp in milliseconds.
func agentTimeSeriesFields() m {
	return m{
		"@timestamp": m{"type": "date"},
		"host":       obj(m{"name": m{"type": "keyword", "time_series_dimension": true}}),
	}
}
