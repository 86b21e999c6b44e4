package dashboards

import (
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestKibanaObjectsAreConsistent(t *testing.T) {
	objs, err := ParseObjects(KibanaObjects())
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckReferences(objs); err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, o := range objs {
		types[o.Type]++
		if o.Attributes.Title == "" {
			t.Errorf("%s/%s has no title", o.Type, o.ID)
		}
	}
	if types["index-pattern"] != 1 || types["dashboard"] != 1 || types["search"] < 4 {
		t.Errorf("object types = %v, want one data view, one dashboard and the saved searches", types)
	}
	fields := Fields(objs)
	for _, want := range []string{"container.name", "log.level", "message", "data_stream.dataset"} {
		found := false
		for _, f := range fields {
			found = found || f == want
		}
		if !found {
			t.Errorf("Fields() = %v lacks %s", fields, want)
		}
	}
}

func TestCheckReferencesFindsDanglingOnes(t *testing.T) {
	objs, err := ParseObjects([]byte(`{"type":"search","id":"s","references":[{"name":"x","type":"index-pattern","id":"gone"}]}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckReferences(objs); err == nil || !strings.Contains(err.Error(), "index-pattern/gone") {
		t.Fatalf("CheckReferences = %v, want a dangling reference error", err)
	}
	if _, err := ParseObjects([]byte("{not json}\n")); err == nil {
		t.Fatal("ParseObjects accepted bad JSON")
	}
}

// TestInstallKibana checks the request against Kibana's documented import
// API. No Kibana runs in this environment, so this is a protocol test with
// a fake server; it is not a substitute for a real import.
func TestInstallKibana(t *testing.T) {
	tests := []struct {
		desc    string
		status  int
		answer  string
		wantErr string
	}{
		{"imported", 200, `{"success":true,"successCount":7}`, ""},
		{"partial failure", 200, `{"success":false,"successCount":6,"errors":[{"id":"heartwood-overview","type":"dashboard","error":{"type":"missing_references"}}]}`, "dashboard/heartwood-overview: missing_references"},
		{"unauthorized", 401, `{"message":"unauthorized"}`, "401"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			var gotAuth, gotXSRF, gotPath string
			var gotFile []byte
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotAuth, gotXSRF, gotPath = r.Header.Get("Authorization"), r.Header.Get("kbn-xsrf"), r.URL.String()
				_, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
				mr := multipart.NewReader(r.Body, params["boundary"])
				if p, err := mr.NextPart(); err == nil && p.FormName() == "file" {
					gotFile, _ = io.ReadAll(p)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.answer))
			}))
			defer srv.Close()
			_, err := InstallKibana(context.Background(), KibanaOptions{URL: srv.URL + "/s/ops/", APIKey: "k"})
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if gotPath != "/s/ops/api/saved_objects/_import?overwrite=true" || gotAuth != "ApiKey k" || gotXSRF == "" {
				t.Errorf("request: path %q auth %q xsrf %q", gotPath, gotAuth, gotXSRF)
			}
			if string(gotFile) != string(KibanaObjects()) {
				t.Errorf("uploaded file differs from the embedded objects")
			}
		})
	}
}
