package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
)

// MinAPITokenLen is the shortest API token the agent accepts.
const MinAPITokenLen = 16

// checkAPIToken returns the token without surrounding white space, or why it
// cannot be used.
func checkAPIToken(raw string) (string, error) {
	tok := strings.TrimSpace(raw)
	switch {
	case tok == "":
		return "", errors.New("is empty")
	case len(tok) < MinAPITokenLen:
		return "", fmt.Errorf("is shorter than %d bytes", MinAPITokenLen)
	}
	return tok, nil
}

// readSecretFile reads a file holding one secret and trims white space
// around it.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// tokenSource gives the API its bearer token. A token file is re-read on
// every call, so that rotation needs no restart; a file that becomes
// unreadable, empty or too short makes protected calls fail (never open)
// and is logged once per change, not per request.
type tokenSource struct {
	inline string
	file   string
	log    *slog.Logger

	mu      sync.Mutex
	problem string // the last problem logged; "" when the token is fine
}

// Token implements api.Options.Token.
func (t *tokenSource) Token() (string, error) {
	if t.file == "" {
		return t.inline, nil // validated at start
	}
	var tok string
	b, err := os.ReadFile(t.file)
	if err == nil {
		tok, err = checkAPIToken(string(b))
		if err != nil {
			err = fmt.Errorf("api-token-file %s %w", t.file, err)
		}
	} else {
		err = fmt.Errorf("api-token-file: %w", err)
	}
	t.report(err)
	return tok, err
}

// report logs a change of the token's state once.
func (t *tokenSource) report(err error) {
	problem := ""
	if err != nil {
		problem = err.Error()
	}
	t.mu.Lock()
	changed := problem != t.problem
	prev := t.problem
	t.problem = problem
	t.mu.Unlock()
	switch {
	case !changed:
	case err != nil:
		t.log.Error("API token unusable; protected calls are refused until it is fixed", "err", err)
	case prev != "":
		t.log.Info("API token usable again", "file", t.file)
	}
}
