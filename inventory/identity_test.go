package inventory

import (
	"errors"
	"testing"
)

func TestFind(t *testing.T) {
	items := []*Container{
		{ID: "abcd1111aaaa2222", Name: "web"},
		{ID: "abcd2222bbbb3333", Name: "db"},
		{ID: "ffff0000cccc4444", Name: "abcd"}, // a name that is also a prefix
	}
	self := func(c *Container) *Container { return c }
	tests := []struct {
		ref     string
		wantID  string
		wantErr error
	}{
		{"abcd1111aaaa2222", "abcd1111aaaa2222", nil},
		{"web", "abcd1111aaaa2222", nil},
		{"/web", "abcd1111aaaa2222", nil},
		{" db ", "abcd2222bbbb3333", nil},
		{"abcd1", "abcd1111aaaa2222", nil},
		{"abcd", "ffff0000cccc4444", nil}, // an exact name wins over prefixes
		{"abcd2222bbbb", "abcd2222bbbb3333", nil},
		{"ffff", "ffff0000cccc4444", nil},
		{"abc", "", ErrNotFound}, // shorter than MinRefPrefix
		{"ab", "", ErrNotFound},
		{"", "", ErrNotFound},
		{"nope", "", ErrNotFound},
		{"abcd1111aaaa2222x", "", ErrNotFound},
	}
	for _, tc := range tests {
		c, err := Find(items, self, tc.ref)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("Find(%q) error = %v, want %v", tc.ref, err, tc.wantErr)
			continue
		}
		if tc.wantErr == nil && c.ID != tc.wantID {
			t.Errorf("Find(%q) = %s, want %s", tc.ref, c.ID, tc.wantID)
		}
	}
	ambiguous := []*Container{{ID: "abcd1111", Name: "one"}, {ID: "abcd2222", Name: "two"}}
	if _, err := Find(ambiguous, self, "abcd"); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("Find(abcd) over two matches = %v, want ErrAmbiguous", err)
	}
}

func TestNames(t *testing.T) {
	c := &Container{ID: "0123456789abcdef0123", Name: "web"}
	tests := []struct {
		ref  string
		want bool
	}{
		{"0123456789abcdef0123", true},
		{"web", true},
		{"/web", true},
		{"0123456789ab", true}, // the short ID
		{"0123456789a", false}, // shorter than ShortIDLen
		{"0123", false},        // configured lists never take short prefixes
		{"", false},
		{"we", false},
	}
	for _, tc := range tests {
		if got := c.Names(tc.ref); got != tc.want {
			t.Errorf("Names(%q) = %t, want %t", tc.ref, got, tc.want)
		}
	}
}

func TestIsSelf(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef"
	tests := []struct {
		id, self string
		want     bool
	}{
		{id, id, true},
		{id, "0123456789ab", true},
		{id, " 0123456789ab\n", true},
		{id, "0123", false}, // too short to trust
		{id, "", false},     // the agent runs on the host
		{"", id, false},
		{"ffff", id, false},
	}
	for _, tc := range tests {
		if got := IsSelf(tc.id, tc.self); got != tc.want {
			t.Errorf("IsSelf(%q, %q) = %t, want %t", tc.id, tc.self, got, tc.want)
		}
	}
}

func TestSelector(t *testing.T) {
	labels := map[string]string{"team": "ml", "tier": "", "env": "prod"}
	tests := []struct {
		sel  Selector
		want bool
	}{
		{nil, true},
		{Selector{"team"}, true},
		{Selector{"team=ml"}, true},
		{Selector{" team = ml "}, true},
		{Selector{"team=ml", "env=prod"}, true},
		{Selector{"team=ml", "env=dev"}, false},
		{Selector{"tier"}, true},
		{Selector{"tier="}, true},
		{Selector{"missing"}, false},
		{Selector{""}, true},
	}
	for _, tc := range tests {
		if got := tc.sel.Matches(labels); got != tc.want {
			t.Errorf("%q.Matches = %t, want %t", tc.sel, got, tc.want)
		}
	}
}

func TestShortID(t *testing.T) {
	if got := ShortID("0123456789abcdef"); got != "0123456789ab" {
		t.Errorf("ShortID = %q", got)
	}
	if got := ShortID("abc"); got != "abc" {
		t.Errorf("ShortID of a short string = %q", got)
	}
}
