package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// kibanaFlags are the Kibana connection settings of setup and doctor.
// Each can also come from the environment (KIBANA_URL, ...), and
// the secrets from files.
type kibanaFlags struct {
	url, apiKey, apiKeyFile, user, pass, passFile, caFile string
}

func (k *kibanaFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.url, "kibana-url", "", "Kibana base `URL`, e.g. https://kibana:5601 (with /s/<space> for a space) (env KIBANA_URL)")
	fs.StringVar(&k.apiKey, "kibana-api-key", "", "Kibana API key (env KIBANA_API_KEY)")
	fs.StringVar(&k.apiKeyFile, "kibana-api-key-file", "", "`file` holding the Kibana API key (env KIBANA_API_KEY_FILE)")
	fs.StringVar(&k.user, "kibana-username", "", "Kibana user (env KIBANA_USERNAME)")
	fs.StringVar(&k.pass, "kibana-password", "", "Kibana password (env KIBANA_PASSWORD)")
	fs.StringVar(&k.passFile, "kibana-password-file", "", "`file` holding the Kibana password (env KIBANA_PASSWORD_FILE)")
	fs.StringVar(&k.caFile, "kibana-ca-file", "", "CA certificate `file` for Kibana's TLS (env KIBANA_CA_FILE)")
}

// resolve fills unset values from the environment, reads the secret files
// and checks the URL. Errors name the flag.
func (k *kibanaFlags) resolve(environ []string) error {
	for _, v := range []struct {
		dst *string
		env string
	}{
		{&k.url, "KIBANA_URL"}, {&k.apiKey, "KIBANA_API_KEY"},
		{&k.apiKeyFile, "KIBANA_API_KEY_FILE"}, {&k.user, "KIBANA_USERNAME"},
		{&k.pass, "KIBANA_PASSWORD"}, {&k.passFile, "KIBANA_PASSWORD_FILE"},
		{&k.caFile, "KIBANA_CA_FILE"},
	} {
		if *v.dst == "" {
			*v.dst = lookupEnv(environ, v.env)
		}
	}
	for _, f := range []struct {
		dst        *string
		path, flag string
	}{{&k.apiKey, k.apiKeyFile, "--kibana-api-key-file"}, {&k.pass, k.passFile, "--kibana-password-file"}} {
		if f.path == "" {
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return fmt.Errorf("%s: %w", f.flag, err)
		}
		*f.dst = strings.TrimSpace(string(b))
	}
	if k.url != "" {
		if err := checkURL(k.url); err != nil {
			return fmt.Errorf("--kibana-url %q: %v", k.url, err)
		}
	}
	if k.apiKey != "" && k.user != "" {
		return fmt.Errorf("--kibana-api-key and --kibana-username: give one of them")
	}
	return nil
}

// checkURL accepts http(s)://host[:port][/path].
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an http:// or https:// URL such as https://kibana:5601")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("want a base URL without query or fragment, such as https://kibana:5601/s/ops")
	}
	return nil
}
