// Package httpclient sends one request to a service's HTTP API
// (Elasticsearch, Kibana, Consul) and reads a bounded answer: the one copy
// of base URL joining, credentials, the default client and the body limit
// that the setup, doctor and template-install clients share.
package httpclient

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Doer sends HTTP requests; *http.Client is one.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Endpoint is a service's base URL with its credentials and the client
// that reaches it.
type Endpoint struct {
	// URL is the base URL; request paths are appended to it.
	URL string
	// Header adds credentials (or other fixed headers) to a request; nil
	// for none.
	Header func(http.Header)
	// Client sends the requests; nil means http.DefaultClient.
	Client Doer
}

// Answer is a service's answer with its body read up to a limit.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// MediaType is the answer's Content-Type without parameters, in lower
// case; "" when it has none or it does not parse.
func (a Answer) MediaType() string {
	mt, _, _ := mime.ParseMediaType(a.Header.Get("Content-Type"))
	return mt
}

// Do sends method path (relative to the endpoint's URL) with body, whose
// Content-Type is contentType ("" sets none), and returns the answer with
// at most limit bytes of its body. An error reading the body is returned
// with the answer's status and header.
func (e Endpoint) Do(ctx context.Context, method, path, contentType string, body []byte, limit int64) (Answer, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(e.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return Answer{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if e.Header != nil {
		e.Header(req.Header)
	}
	c := e.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	a := Answer{Status: resp.StatusCode, Header: resp.Header}
	a.Body, err = io.ReadAll(io.LimitReader(resp.Body, limit))
	return a, err
}

// Credentials returns a Header function for the usual credentials: an API
// key (Authorization: ApiKey), else a user and password (basic
// authentication), else nil for none.
func Credentials(apiKey, user, password string) func(http.Header) {
	switch {
	case apiKey != "":
		return func(h http.Header) { h.Set("Authorization", "ApiKey "+apiKey) }
	case user != "":
		return func(h http.Header) {
			r := http.Request{Header: h}
			r.SetBasicAuth(user, password)
		}
	}
	return nil
}

// Excerpt cuts a service's message or body to at most max bytes (marking
// the cut with "…") so that an error quoting it stays readable.
func Excerpt(s string, max int) string {
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
