package esschema

import (
	"context"
	"encoding/json"
	"testing"
)

type cannedES struct {
	status int
	body   []byte
}

func (c cannedES) Do(context.Context, string, string, []byte) (int, []byte, error) {
	return c.status, c.body, nil
}

// FuzzClusterAnswers: whatever the cluster answers, detection, waiting and
// installing return an error or a result and never panic; documents of any
// shape are checked without panicking.
func FuzzClusterAnswers(f *testing.F) {
	f.Add(200, []byte(`{"nodes":{"a":{"version":"8.15.5","modules":[{"name":"x-pack-ilm"}]}}}`))
	f.Add(200, []byte(`{"component_templates":[{"name":"heartwood@base","component_template":{"template":7}}]}`))
	f.Add(200, []byte(`{"heartwood-logs":{"policy":null}}`))
	f.Add(400, []byte(`{"error":{"type":"x","reason":"y"}}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		c := cannedES{status, body}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // WaitReady must not wait
		_, _, _ = Detect(context.Background(), c)
		_ = WaitReady(ctx, c)
		o := Options{LogPatterns: LogPatterns("d"), Retention: DefaultRetention(), Features: Features{ILM: true}}
		_, _ = o.Install(context.Background(), c, true)
		var doc map[string]any
		if json.Unmarshal(body, &doc) == nil {
			_ = CheckDocument(Mappings(Logs, Features{}), doc)
			_ = DiffMappings(Mappings(Metrics, Features{TimeSeries: true}), doc)
		}
	})
}
