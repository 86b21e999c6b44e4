package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
)

// KibanaOptions say how to reach Kibana.
type KibanaOptions struct {
	// URL is Kibana's base URL, e.g. http://kibana:5601 (with the space
	// path, /s/<space>, if the objects belong in a space).
	URL string
	// APIKey, or Username and Password, authenticate; both empty means none.
	APIKey, Username, Password string
	Client                     *http.Client
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

// InstallKibana imports the saved objects, overwriting earlier versions, so
// that running it again after an upgrade updates them.
func InstallKibana(ctx context.Context, o KibanaOptions) (ImportResult, error) {
	var res ImportResult
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file", "heartwood.ndjson")
	if err != nil {
		return res, fmt.Errorf("kibana import: %w", err)
	}
	if _, err := part.Write(kibanaObjects); err != nil {
		return res, fmt.Errorf("kibana import: %w", err)
	}
	if err := mw.Close(); err != nil {
		return res, fmt.Errorf("kibana import: %w", err)
	}
	url := strings.TrimRight(o.URL, "/") + "/api/saved_objects/_import?overwrite=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, &body)
	if err != nil {
		return res, fmt.Errorf("kibana import: %w", err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("kbn-xsrf", "heartwood")
	switch {
	case o.APIKey != "":
		req.Header.Set("Authorization", "ApiKey "+o.APIKey)
	case o.Username != "":
		req.SetBasicAuth(o.Username, o.Password)
	}
	hc := o.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return res, fmt.Errorf("kibana import: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return res, fmt.Errorf("kibana import: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("kibana import: %s: %s", resp.Status, bytes.TrimSpace(raw))
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return res, fmt.Errorf("kibana import: unreadable answer: %w", err)
	}
	if !res.Success {
		var errs []string
		for _, e := range res.Errors {
			errs = append(errs, e.Type+"/"+e.ID+": "+e.Error.Type)
		}
		return res, fmt.Errorf("kibana import: %d imported, failed: %s", res.SuccessCount, strings.Join(errs, ", "))
	}
	return res, nil
}
