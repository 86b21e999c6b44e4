package dashboards

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"
	"time"

	"github.com/heartwood-ops/heartwood/internal/backoff"
	"github.com/heartwood-ops/heartwood/internal/httpclient"
	"github.com/heartwood-ops/heartwood/internal/jsonsubset"
)

// Kibana is a client of the Kibana APIs that setup uses: status, bulk get
// and the saved objects import.
type Kibana struct {
	// URL is Kibana's base URL, e.g. http://kibana:5601 (with the space
	// path, /s/<space>, if the objects belong in a space).
	URL string
	// APIKey, or Username and Password, authenticate; both empty means none.
	APIKey, Username, Password string
	Client                     *http.Client
}

// ErrNotKibana is returned when the server at the URL does not answer as
// Kibana does.
var ErrNotKibana = errors.New("not Kibana")

// StatusError is a Kibana answer with an unexpected status.
type StatusError struct {
	Op     string
	Status int
	// Message is Kibana's JSON error message, if it sent one.
	Message string
}

// HTTPStatus returns the answer's status.
func (e *StatusError) HTTPStatus() int { return e.Status }

func (e *StatusError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("%s: %d: %s", e.Op, e.Status, e.Message)
	}
	return fmt.Sprintf("%s: %d %s", e.Op, e.Status, http.StatusText(e.Status))
}

func (k Kibana) do(ctx context.Context, method, path, ctype string, body []byte) (int, []byte, error) {
	creds := httpclient.Credentials(k.APIKey, k.Username, k.Password)
	e := httpclient.Endpoint{URL: k.URL, Header: func(h http.Header) {
		h.Set("kbn-xsrf", "true")
		if creds != nil {
			creds(h)
		}
	}}
	if k.Client != nil {
		e.Client = k.Client
	}
	a, err := e.Do(ctx, method, path, ctype, body, 16<<20)
	if err != nil {
		return a.Status, nil, err
	}
	if mt := a.MediaType(); mt != "application/json" {
		// An HTML login page, a proxy's error page: never pass it on.
		return a.Status, nil, fmt.Errorf("%w: %s %s answered %d with %q", ErrNotKibana, method, path, a.Status, mt)
	}
	return a.Status, a.Body, nil
}

// statusErr builds the error for an unexpected status from a JSON answer.
func statusErr(op string, status int, raw []byte) error {
	var m struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(raw, &m)
	return &StatusError{Op: op, Status: status, Message: httpclient.Excerpt(m.Message, 300)}
}

// Version returns Kibana's version once its status API says it is
// available.
func (k Kibana) Version(ctx context.Context) (string, error) {
	status, raw, err := k.do(ctx, http.MethodGet, "/api/status", "", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Version struct {
			Number string `json:"number"`
		} `json:"version"`
		Status struct {
			Overall struct {
				Level string `json:"level"`
			} `json:"overall"`
		} `json:"status"`
	}
	if json.Unmarshal(raw, &st) != nil || st.Version.Number == "" {
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			return "", statusErr("status", status, raw)
		}
		return "", fmt.Errorf("%w: /api/status answered %d without a version", ErrNotKibana, status)
	}
	if status != http.StatusOK || st.Status.Overall.Level != "available" {
		return st.Version.Number, fmt.Errorf("Kibana %s is %s (%d)", st.Version.Number, st.Status.Overall.Level, status)
	}
	return st.Version.Number, nil
}

// WaitReady polls the status API until Kibana is available, ctx ends or
// an error that waiting cannot cure (wrong server, credentials) occurs.
func (k Kibana) WaitReady(ctx context.Context) (string, error) {
	b := backoff.New(500*time.Millisecond, 5*time.Second)
	for {
		v, err := k.Version(ctx)
		var se *StatusError
		if err == nil || errors.Is(err, ErrNotKibana) || errors.As(err, &se) {
			return v, err
		}
		if werr := b.Wait(ctx); werr != nil {
			return v, fmt.Errorf("%w (last: %v)", werr, err)
		}
	}
}

// Changed returns the objects of ndjson that Kibana lacks or holds with
// other content. Only what the objects set is compared: attributes Kibana
// adds on its own do not count as changes.
func (k Kibana) Changed(ctx context.Context, ndjson []byte) ([]string, error) {
	want, err := rawObjects(ndjson)
	if err != nil {
		return nil, err
	}
	var ids []map[string]string
	for _, o := range want {
		ids = append(ids, map[string]string{"type": o.Type, "id": o.ID})
	}
	body, _ := json.Marshal(ids)
	status, raw, err := k.do(ctx, http.MethodPost, "/api/saved_objects/_bulk_get", "application/json", body)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, statusErr("bulk get", status, raw)
	}
	var got struct {
		SavedObjects []rawObject `json:"saved_objects"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		return nil, fmt.Errorf("bulk get: %w", err)
	}
	have := map[string]rawObject{}
	for _, o := range got.SavedObjects {
		if o.Error == nil {
			have[o.Type+"/"+o.ID] = o
		}
	}
	var changed []string
	for _, o := range want {
		h, ok := have[o.Type+"/"+o.ID]
		if !ok || !jsonsubset.Contains(o.Attributes, h.Attributes) || !sameRefs(o.References, h.References) {
			changed = append(changed, o.Type+"/"+o.ID)
		}
	}
	return changed, nil
}

type rawObject struct {
	Type       string         `json:"type"`
	ID         string         `json:"id"`
	Attributes map[string]any `json:"attributes"`
	References []Reference    `json:"references"`
	Error      any            `json:"error,omitempty"`
}

func rawObjects(ndjson []byte) ([]rawObject, error) {
	var out []rawObject
	sc := bufio.NewScanner(bytes.NewReader(ndjson))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var o rawObject
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, sc.Err()
}

func sameRefs(want, have []Reference) bool {
	set := map[Reference]bool{}
	for _, r := range have {
		set[r] = true
	}
	for _, r := range want {
		if !set[r] {
			return false
		}
	}
	return true
}

// ImportResult is Kibana's answer to an import.
type ImportResult struct {
	Success      bool `json:"success"`
	SuccessCount int  `json:"successCount"`
	Errors       []struct {
		ID    string `json:"id"`
		Type  string `json:"type"`
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	} `json:"errors"`
}

// Import imports NDJSON saved objects with Kibana's documented import API
// (multipart form, field "file", overwrite=true), replacing earlier
// versions.
func (k Kibana) Import(ctx context.Context, ndjson []byte) (ImportResult, error) {
	var res ImportResult
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file", "heartwood.ndjson")
	if err != nil {
		return res, err
	}
	if _, err := part.Write(ndjson); err != nil {
		return res, err
	}
	if err := mw.Close(); err != nil {
		return res, err
	}
	status, raw, err := k.do(ctx, http.MethodPost, "/api/saved_objects/_import?overwrite=true", mw.FormDataContentType(), body.Bytes())
	if err != nil {
		return res, err
	}
	if status != http.StatusOK {
		return res, statusErr("import", status, raw)
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return res, fmt.Errorf("import: unreadable answer: %w", err)
	}
	if !res.Success {
		var errs []string
		for _, e := range res.Errors {
			errs = append(errs, e.Type+"/"+e.ID+": "+e.Error.Type)
		}
		return res, fmt.Errorf("import: %d imported, failed: %s", res.SuccessCount, strings.Join(errs, ", "))
	}
	return res, nil
}
