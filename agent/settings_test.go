package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateRejectsWeakAPITokens(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string { return writeTestFile(t, dir, name, content) }
	tests := []struct {
		desc       string
		token      string
		tokenFile  string
		wantErrSub string // "" means valid
	}{
		{"no token on loopback", "", "", ""},
		{"long inline token", "0123456789abcdef", "", ""},
		{"whitespace-only inline token", "   \t", "", "api-token: is empty"},
		{"short inline token", "short", "", "api-token: is shorter than 16 bytes"},
		{"good token file", "", file("good", "0123456789abcdef\n"), ""},
		{"empty token file", "", file("empty", ""), "api-token-file: " + filepath.Join(dir, "empty") + " is empty"},
		{"whitespace token file", "", file("blank", " \n\t\n"), "is empty"},
		{"short token file", "", file("short", "abc\n"), "shorter than 16 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			c := DefaultCore()
			c.APIToken, c.APITokenFile = tc.token, tc.tokenFile
			err := c.Validate()
			if tc.wantErrSub == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErrSub) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.wantErrSub)
			}
		})
	}
}

// writeTestFile writes content to dir/name and returns the path.
func writeTestFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
