package inventory

import (
	"errors"
	"strings"
)

// Container identity: the one set of rules by which the agent, its API, its
// CLI and every subsystem name a container.

// ShortIDLen is the length of the ID form Docker prints.
const ShortIDLen = 12

// MinRefPrefix is the shortest ID prefix that Find accepts as a reference;
// shorter strings match names only.
const MinRefPrefix = 4

var (
	// ErrNotFound: no container answers to the reference.
	ErrNotFound = errors.New("no such container")
	// ErrAmbiguous: the ID prefix matches more than one container.
	ErrAmbiguous = errors.New("ambiguous container ID prefix")
)

// ShortID returns the 12-character form of a container ID.
func ShortID(id string) string {
	if len(id) > ShortIDLen {
		return id[:ShortIDLen]
	}
	return id
}

// ShortID is the 12-character form of the container ID that Docker prints.
func (c *Container) ShortID() string { return ShortID(c.ID) }

// NormalizeRef trims white space and the leading "/" Docker puts on names.
func NormalizeRef(ref string) string { return strings.TrimPrefix(strings.TrimSpace(ref), "/") }

// Find resolves ref among items the way the Docker CLI does: a full ID or an
// exact name first, then a unique ID prefix of at least MinRefPrefix
// characters. key returns each item's container. It returns ErrNotFound or
// ErrAmbiguous when ref names no single container.
func Find[T any](items []T, key func(T) *Container, ref string) (T, error) {
	var zero T
	ref = NormalizeRef(ref)
	if ref == "" {
		return zero, ErrNotFound
	}
	var match T
	matches := 0
	for _, it := range items {
		c := key(it)
		if c.ID == ref || c.Name == ref {
			return it, nil
		}
		if len(ref) >= MinRefPrefix && strings.HasPrefix(c.ID, ref) {
			match = it
			matches++
		}
	}
	switch matches {
	case 0:
		return zero, ErrNotFound
	case 1:
		return match, nil
	}
	return zero, ErrAmbiguous
}

// Names reports whether ref names c in a configured list (exclusions and
// the like), where uniqueness cannot be checked: a full ID, the exact name,
// or an ID prefix of at least ShortIDLen characters.
func (c *Container) Names(ref string) bool {
	ref = NormalizeRef(ref)
	if ref == "" {
		return false
	}
	return c.ID == ref || c.Name == ref || (len(ref) >= ShortIDLen && strings.HasPrefix(c.ID, ref))
}

// IsSelf reports whether the container with this ID is the agent's own,
// given the ID the agent detected or was configured with (self may be
// empty: the agent runs on the host). A configured self ID may be the short
// form.
func IsSelf(id, self string) bool {
	self = strings.TrimSpace(self)
	if self == "" || id == "" {
		return false
	}
	return id == self || (len(self) >= ShortIDLen && strings.HasPrefix(id, self))
}

// Selector is a conjunction of label requirements, each "key" (the label is
// present) or "key=value" (it has that value).
type Selector []string

// Matches reports whether labels satisfy every requirement; an empty
// selector matches everything.
func (s Selector) Matches(labels map[string]string) bool {
	for _, req := range s {
		req = strings.TrimSpace(req)
		if req == "" {
			continue
		}
		k, v, hasValue := strings.Cut(req, "=")
		got, ok := labels[strings.TrimSpace(k)]
		if !ok || (hasValue && got != strings.TrimSpace(v)) {
			return false
		}
	}
	return true
}
