package config

import (
	"errors"
	"fmt"
	"time"
)

// Problems collects the invalid settings of one section, so that a
// Validate method reports all of them at once, each naming its key as
// <section>.<key> (the key alone for settings outside a section).
type Problems struct {
	section string
	errs    []error
}

// NewProblems returns an empty collection for the settings under section,
// e.g. "registrar"; "" for top-level settings.
func NewProblems(section string) *Problems {
	return &Problems{section: section}
}

// Add reports key as invalid; format and args say why.
func (p *Problems) Add(key, format string, args ...any) {
	if p.section != "" {
		key = p.section + "." + key
	}
	p.errs = append(p.errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
}

// Positive reports key unless d is above zero.
func (p *Problems) Positive(key string, d time.Duration) {
	if d <= 0 {
		p.Add(key, "must be > 0, got %s", d)
	}
}

// Include adds the error of a subsection that validates itself (its
// messages begin with keys relative to it) under key, e.g. "output".
func (p *Problems) Include(key string, err error) {
	if err == nil {
		return
	}
	if p.section != "" {
		key = p.section + "." + key
	}
	p.errs = append(p.errs, fmt.Errorf("%s.%w", key, err))
}

// Err returns every problem joined into one error, or nil when there is
// none.
func (p *Problems) Err() error {
	return errors.Join(p.errs...)
}
