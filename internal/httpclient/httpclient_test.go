package httpclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEndpointDo(t *testing.T) {
	type seen struct {
		method, path, ctype, auth, extra, body string
	}
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = seen{r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"), r.Header.Get("Authorization"), r.Header.Get("X-Extra"), string(b)}
		w.Header().Set("Content-Type", "Application/JSON; charset=utf-8")
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, `{"answer":"0123456789"}`)
	}))
	defer srv.Close()

	tests := []struct {
		name     string
		e        Endpoint
		method   string
		path     string
		ctype    string
		body     string
		limit    int64
		want     seen
		wantBody string
	}{
		{
			name: "GET without body, content type or credentials", e: Endpoint{URL: srv.URL + "/"},
			method: http.MethodGet, path: "/_nodes?x=1", limit: 1 << 20,
			want:     seen{method: "GET", path: "/_nodes?x=1"},
			wantBody: `{"answer":"0123456789"}`,
		},
		{
			name: "POST with body, content type and headers", e: Endpoint{URL: srv.URL + "/s/ops", Client: srv.Client(),
				Header: func(h http.Header) { h.Set("X-Extra", "yes"); Credentials("key", "", "")(h) }},
			method: http.MethodPost, path: "/api/x", ctype: "application/json", body: `{"a":1}`, limit: 1 << 20,
			want:     seen{"POST", "/s/ops/api/x", "application/json", "ApiKey key", "yes", `{"a":1}`},
			wantBody: `{"answer":"0123456789"}`,
		},
		{
			name: "body cut at the limit", e: Endpoint{URL: srv.URL},
			method: http.MethodGet, path: "/", limit: 5,
			want:     seen{method: "GET", path: "/"},
			wantBody: `{"ans`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = seen{}
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			a, err := tt.e.Do(context.Background(), tt.method, tt.path, tt.ctype, body, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("server saw %+v, want %+v", got, tt.want)
			}
			if a.Status != http.StatusTeapot || string(a.Body) != tt.wantBody || a.MediaType() != "application/json" {
				t.Errorf("answer = %d %q %q, want 418 %q application/json", a.Status, a.Body, a.MediaType(), tt.wantBody)
			}
		})
	}
}

type failingDoer struct{ err error }

func (f failingDoer) Do(*http.Request) (*http.Response, error) { return nil, f.err }

func TestEndpointDoErrors(t *testing.T) {
	refused := errors.New("connection refused")
	if _, err := (Endpoint{URL: "http://x.invalid", Client: failingDoer{refused}}).Do(context.Background(), http.MethodGet, "/", "", nil, 10); !errors.Is(err, refused) {
		t.Errorf("transport error = %v, want %v", err, refused)
	}
	if _, err := (Endpoint{URL: "http://bad host"}).Do(context.Background(), http.MethodGet, "/", "", nil, 10); err == nil {
		t.Error("a malformed URL gave no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	if _, err := (Endpoint{URL: srv.URL}).Do(ctx, http.MethodGet, "/", "", nil, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: error = %v, want context.Canceled", err)
	}
}

func TestCredentials(t *testing.T) {
	tests := []struct {
		name, apiKey, user, password string
		want                         string // Authorization; "-" for no Header function
	}{
		{"api key wins", "k1", "u", "p", "ApiKey k1"},
		{"basic", "", "elastic", "secret", "Basic ZWxhc3RpYzpzZWNyZXQ="},
		{"none", "", "", "ignored", "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Credentials(tt.apiKey, tt.user, tt.password)
			if tt.want == "-" {
				if f != nil {
					t.Fatal("want no Header function")
				}
				return
			}
			h := http.Header{}
			f(h)
			if got := h.Get("Authorization"); got != tt.want {
				t.Errorf("Authorization = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExcerpt(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{strings.Repeat("x", 12), 10, strings.Repeat("x", 10) + "…"},
	}
	for _, tt := range tests {
		if got := Excerpt(tt.in, tt.max); got != tt.want {
			t.Errorf("Excerpt(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}
