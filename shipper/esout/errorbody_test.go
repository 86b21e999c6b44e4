package esout

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseErrorBody(t *testing.T) {
	tests := []struct {
		body              string
		wantType, wantRsn string
	}{
		{`{"error":{"type":"illegal_argument_exception","reason":"bad"},"status":400}`, "illegal_argument_exception", "bad"},
		{`{"error":"plain message","status":404}`, "http_404", "plain message"},
		{`not json at all`, "http_404", "not json at all"},
		{``, "http_404", ""},
	}
	for _, tt := range tests {
		e := parseErrorBody(404, []byte(tt.body))
		if tt.body != "" && strings.Contains(tt.body, "400") {
			e = parseErrorBody(400, []byte(tt.body))
		}
		if e.Type != tt.wantType || e.Reason != tt.wantRsn {
			t.Errorf("parseErrorBody(%q) = %q/%q, want %q/%q", tt.body, e.Type, e.Reason, tt.wantType, tt.wantRsn)
		}
	}
}

// FuzzParseErrorBody: Elasticsearch (or whatever answers at its address)
// controls error bodies; parsing never panics, always names a type, and
// keeps the reason of an unparsable body short.
func FuzzParseErrorBody(f *testing.F) {
	f.Add(503, []byte(`{"error":{"root_cause":[],"type":"unavailable_shards_exception","reason":"x"},"status":503}`))
	f.Add(400, []byte(`{"error":"no handler"}`))
	f.Add(502, []byte("<html>bad gateway</html>"))
	f.Add(429, []byte(`{"error":{"type":1,"reason":[]}}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := parseErrorBody(status, body)
		if e.Type == "" {
			t.Fatalf("no type for %q", body)
		}
		if e.Status != status {
			t.Fatalf("status %d, want %d", e.Status, status)
		}
		if len(e.Reason) > len(body) && utf8.Valid(body) {
			t.Fatalf("reason %q longer than the body %q", e.Reason, body)
		}
		_ = e.Error()
	})
}
