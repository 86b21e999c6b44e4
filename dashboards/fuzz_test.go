package dashboards

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
)

// FuzzParseObjects: saved objects from anywhere (an edited export) never
// crash the parser or the checks.
func FuzzParseObjects(f *testing.F) {
	f.Add(KibanaObjects())
	f.Add([]byte(`{"type":"dashboard","id":"d","attributes":{"panelsJSON":"[{\"gridData\":{\"w\":-1}}]","controlGroupInput":{"panelsJSON":"{}"}},"references":[{"name":"controlGroup_x:optionsListDataView","type":"index-pattern","id":"v"}]}`))
	f.Add([]byte(`{"type":"lens","id":"l","attributes":{"state":{"datasourceStates":{"formBased":{"layers":{"a":{"columns":{"c":{"filter":{"query":"a:b"}}}}}}}}},"references":[{"type":"index-pattern","id":"v"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := ParseObjects(data)
		if err != nil {
			return
		}
		_, _ = UsedFields(objs)
		_ = CheckReferences(objs)
		_ = CheckLayout(objs)
		_ = Fields(objs)
	})
}

// answerDoer answers every request with one canned response.
type answerDoer struct {
	status int
	ctype  string
	body   []byte
}

func (a answerDoer) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: a.status, Header: http.Header{"Content-Type": {a.ctype}},
		Body: io.NopCloser(bytes.NewReader(a.body))}, nil
}

// FuzzKibanaAnswers: whatever a server answers, the client returns an
// error or a result, never panics, and never passes on a non-JSON page.
func FuzzKibanaAnswers(f *testing.F) {
	f.Add(200, "application/json", []byte(`{"version":{"number":"8.15.0"},"status":{"overall":{"level":"available"}}}`))
	f.Add(200, "application/json", []byte(`{"saved_objects":[{"type":"lens","id":"x","attributes":{"title":1},"references":null}]}`))
	f.Add(200, "application/json", []byte(`{"success":false,"errors":[{"id":1}]}`))
	f.Add(401, "application/json", []byte(`{"message":"no"}`))
	f.Add(200, "text/html", []byte(`<html>login</html>`))
	f.Fuzz(func(t *testing.T, status int, ctype string, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		k := Kibana{URL: "http://kibana.invalid", Client: &http.Client{Transport: answerDoer{status, ctype, body}}}
		ctx := context.Background()
		objs := []byte(`{"type":"lens","id":"x","attributes":{"title":"t"},"references":[]}` + "\n")
		for _, err := range []error{
			func() error { _, err := k.Version(ctx); return err }(),
			func() error { _, err := k.Changed(ctx, objs); return err }(),
			func() error { _, err := k.Import(ctx, objs); return err }(),
		} {
			// The error may name the content type (as Go's MIME parser
			// lowercases it), never repeat a non-JSON body.
			namesType := bytes.Contains(bytes.ToLower([]byte(ctype)), bytes.ToLower(body))
			if err != nil && len(body) > 8 && bytes.Contains([]byte(err.Error()), body) &&
				!namesType && !bytes.HasPrefix(bytes.TrimSpace([]byte(ctype)), []byte("application/json")) {
				t.Fatalf("error carries a non-JSON body: %v", err)
			}
		}
	})
}
