// Package kibanatest is a stand-in Kibana for tests: it serves the status,
// bulk get and saved objects import APIs, and rejects import requests that
// differ from Kibana's documented form (POST
// /api/saved_objects/_import?overwrite=true, kbn-xsrf header,
// multipart/form-data with one NDJSON part named "file"). No real Kibana
// is available to the tests; this checks the protocol, not Kibana's
// acceptance of the objects.
package kibanatest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Server is a fake Kibana.
type Server struct {
	*httptest.Server
	// Version is reported by /api/status.
	Version string
	// APIKey, when set, is required as "Authorization: ApiKey <key>".
	APIKey string

	mu      sync.Mutex
	objects map[string]map[string]any // type/id -> object
	imports int
	errs    []string
}

// New starts a fake Kibana; the test's end stops it.
func New(t testing.TB) *Server {
	s := &Server{Version: "8.15.0", objects: map[string]map[string]any{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Imports returns how many imports succeeded.
func (s *Server) Imports() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.imports
}

// Objects returns how many objects are stored.
func (s *Server) Objects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objects)
}

// Violations returns the protocol errors seen: requests that Kibana would
// have rejected.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errs...)
}

func (s *Server) reject(w http.ResponseWriter, status int, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	s.mu.Lock()
	s.errs = append(s.errs, msg)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"statusCode": status, "error": http.StatusText(status), "message": msg})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.APIKey != "" && r.Header.Get("Authorization") != "ApiKey "+s.APIKey {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"statusCode":401,"error":"Unauthorized","message":"missing authentication credentials"}`))
		return
	}
	path := r.URL.Path
	if i := strings.Index(path, "/api/"); i > 0 && strings.HasPrefix(path, "/s/") {
		path = path[i:] // a space
	}
	switch {
	case r.Method == http.MethodGet && path == "/api/status":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"name":"kibana","version":{"number":%q},"status":{"overall":{"level":"available"}}}`, s.Version)
	case r.Method == http.MethodPost && path == "/api/saved_objects/_bulk_get":
		s.bulkGet(w, r)
	case path == "/api/saved_objects/_import":
		s.importObjects(w, r)
	default:
		s.reject(w, http.StatusNotFound, "%s %s: not a Kibana API", r.Method, r.URL.Path)
	}
}

func (s *Server) bulkGet(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("kbn-xsrf") == "" {
		s.reject(w, http.StatusBadRequest, "bulk get without kbn-xsrf header")
		return
	}
	var ids []struct{ Type, ID string }
	if err := json.NewDecoder(r.Body).Decode(&ids); err != nil {
		s.reject(w, http.StatusBadRequest, "bulk get body: %v", err)
		return
	}
	var out []any
	s.mu.Lock()
	for _, id := range ids {
		if o, ok := s.objects[id.Type+"/"+id.ID]; ok {
			out = append(out, o)
		} else {
			out = append(out, map[string]any{"type": id.Type, "id": id.ID, "error": map[string]any{"statusCode": 404, "error": "Not Found"}})
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"saved_objects": out})
}

func (s *Server) importObjects(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.reject(w, http.StatusNotFound, "import with %s", r.Method)
		return
	}
	if r.Header.Get("kbn-xsrf") == "" {
		s.reject(w, http.StatusBadRequest, "import without kbn-xsrf header")
		return
	}
	if r.URL.Query().Get("overwrite") != "true" || r.URL.Query().Has("createNewCopies") {
		s.reject(w, http.StatusBadRequest, "import query %q: want overwrite=true", r.URL.RawQuery)
		return
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		s.reject(w, http.StatusUnsupportedMediaType, "import content type %q: want multipart/form-data", r.Header.Get("Content-Type"))
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var file []byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.reject(w, http.StatusBadRequest, "import body: %v", err)
			return
		}
		if p.FormName() != "file" || !strings.HasSuffix(p.FileName(), ".ndjson") || file != nil {
			s.reject(w, http.StatusBadRequest, "import part %q (file %q): want one part \"file\" with an .ndjson file", p.FormName(), p.FileName())
			return
		}
		file, _ = io.ReadAll(p)
	}
	sc := bufio.NewScanner(bytes.NewReader(file))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var objs []map[string]any
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var o map[string]any
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			s.reject(w, http.StatusBadRequest, "import: a line is not JSON: %v", err)
			return
		}
		if o["type"] == nil || o["id"] == nil || o["attributes"] == nil {
			s.reject(w, http.StatusBadRequest, "import: object without type, id or attributes")
			return
		}
		objs = append(objs, o)
	}
	s.mu.Lock()
	for _, o := range objs {
		// Kibana adds bookkeeping of its own.
		o["updated_at"] = "2026-01-01T00:00:00.000Z"
		o["version"] = "WzEsMV0="
		s.objects[fmt.Sprint(o["type"])+"/"+fmt.Sprint(o["id"])] = o
	}
	s.imports++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"success":true,"successCount":%d}`, len(objs))
}
