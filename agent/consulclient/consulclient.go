// Package consulclient builds the agent's Consul API client: address, TLS,
// and an ACL token taken from the configuration, CONSUL_HTTP_TOKEN or a token
// file that is re-read whenever it changes, so a rotated token is used
// without restarting the agent.
package consulclient

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// Options describe how to reach the local Consul agent.
type Options struct {
	// Addr is host:port, or a URL with an http or https scheme.
	Addr string
	// Token is the ACL token; TokenFile, if set, takes precedence and is
	// re-read when its modification time changes.
	Token     string
	TokenFile string
	// TLS settings; any of them switches the scheme to https unless Addr
	// names one.
	CAFile, CAPath, CertFile, KeyFile, ServerName string
	InsecureSkipVerify                            bool
}

// New returns a Consul client for opts.
func New(opts Options) (*consulapi.Client, error) {
	cfg := consulapi.DefaultNonPooledConfig()
	addr := opts.Addr
	switch {
	case strings.HasPrefix(addr, "https://"):
		cfg.Scheme, addr = "https", strings.TrimPrefix(addr, "https://")
	case strings.HasPrefix(addr, "http://"):
		cfg.Scheme, addr = "http", strings.TrimPrefix(addr, "http://")
	case opts.CAFile != "" || opts.CAPath != "" || opts.CertFile != "":
		cfg.Scheme = "https"
	default:
		cfg.Scheme = "http"
	}
	cfg.Address = addr
	cfg.Token = "" // injected per request by the transport below
	cfg.TokenFile = ""
	cfg.TLSConfig = consulapi.TLSConfig{
		Address:            opts.ServerName,
		CAFile:             opts.CAFile,
		CAPath:             opts.CAPath,
		CertFile:           opts.CertFile,
		KeyFile:            opts.KeyFile,
		InsecureSkipVerify: opts.InsecureSkipVerify,
	}
	tlsCfg, err := consulapi.SetupTLSConfig(&cfg.TLSConfig)
	if err != nil {
		return nil, fmt.Errorf("consul tls: %w", err)
	}
	base := cfg.Transport
	base.TLSClientConfig = tlsCfg
	base.MaxIdleConnsPerHost = 16
	src := &tokenSource{static: opts.Token, file: opts.TokenFile}
	if opts.TokenFile != "" {
		if _, err := src.token(); err != nil {
			return nil, err
		}
	}
	cfg.HttpClient = &http.Client{Transport: &tokenTransport{base: base, src: src}}
	client, err := consulapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul client: %w", err)
	}
	return client, nil
}

// tokenSource yields the current ACL token.
type tokenSource struct {
	static string
	file   string

	mu      sync.Mutex
	modTime time.Time
	size    int64
	cached  string
}

func (s *tokenSource) token() (string, error) {
	if s.file == "" {
		return s.static, nil
	}
	st, err := os.Stat(s.file)
	if err != nil {
		return "", fmt.Errorf("consul token file: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.ModTime().Equal(s.modTime) && st.Size() == s.size {
		return s.cached, nil
	}
	b, err := os.ReadFile(s.file)
	if err != nil {
		return "", fmt.Errorf("consul token file: %w", err)
	}
	s.cached, s.modTime, s.size = strings.TrimSpace(string(b)), st.ModTime(), st.Size()
	return s.cached, nil
}

// tokenTransport sets X-Consul-Token on every request that has none.
type tokenTransport struct {
	base http.RoundTripper
	src  *tokenSource
}

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.src.token()
	if err != nil {
		return nil, err
	}
	if tok != "" && req.Header.Get("X-Consul-Token") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("X-Consul-Token", tok)
	}
	return t.base.RoundTrip(req)
}
