package testenv

import (
	"encoding/json"
	"hash/fnv"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// ESDo sends one request to Elasticsearch and returns the answer's body;
// an answer of 300 or more fails the test (but a DELETE's 404).
func ESDo(t testing.TB, esURL, method, path, body string) []byte {
	t.Helper()
	req, err := http.NewRequest(method, esURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 && !(method == http.MethodDelete && resp.StatusCode == http.StatusNotFound) {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, out)
	}
	return out
}

// ESMapping returns the mapping properties of a data stream's newest
// backing index.
func ESMapping(t testing.TB, esURL, index string) map[string]any {
	t.Helper()
	var m map[string]struct {
		Mappings struct {
			Properties map[string]any `json:"properties"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal(ESDo(t, esURL, http.MethodGet, "/"+index+"/_mapping", ""), &m); err != nil {
		t.Fatal(err)
	}
	var latest string
	for name := range m {
		if name > latest {
			latest = name
		}
	}
	return m[latest].Mappings.Properties
}

// ESSources returns the _source of an index's documents (up to 10000),
// oldest first.
func ESSources(t testing.TB, esURL, index string) []map[string]any {
	t.Helper()
	body := ESDo(t, esURL, http.MethodPost, "/"+index+"/_search",
		`{"size":10000,"sort":[{"@timestamp":"asc"}],"query":{"match_all":{}}}`)
	var res struct {
		Hits struct {
			Hits []struct {
				Source map[string]any `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	out := make([]map[string]any, 0, len(res.Hits.Hits))
	for _, h := range res.Hits.Hits {
		out = append(out, h.Source)
	}
	return out
}

// JSON returns v as encoding/json decodes it (maps, float64s), as
// documents and mappings read back from Elasticsearch are.
func JSON(t testing.TB, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TemplatePriority is an index template priority of a test run's own:
// tests share the cluster, and overlapping templates must not share a
// priority. It is even, so that Heartwood's own streams' templates at +1
// cannot tie either.
func TemplatePriority(run string) int {
	h := fnv.New32a()
	h.Write([]byte(run))
	return 1000 + int(h.Sum32()%20000)*2
}
