package config

import (
	"net/url"
	"strings"
)

// RedactURL returns raw with its user information (user name and password)
// replaced by "redacted", so that it can be printed, logged or put in an
// error. A string that does not parse as a URL but contains "@" is replaced
// whole, since it may still hold credentials.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return "[redacted]"
		}
		return raw
	}
	if u.User == nil {
		return raw
	}
	u.User = url.User("redacted")
	return u.String()
}

// redactIfURL applies RedactURL to values that look like URLs.
func redactIfURL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return RedactURL(s)
}
