package jsonesc

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", `"abc"`},
		{"a\"b\\c", `"a\"b\\c"`},
		{"\xff", `"\ufffd"`},
		{"é\xc3", `"é\ufffd"`},
		{"\x00\x07\n\t\r", `"\u0000\u0007\n\t\r"`},
		{"😀", `"😀"`},
	}
	for _, tt := range tests {
		if got := string(AppendString(nil, tt.in)); got != tt.want {
			t.Errorf("AppendString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if got := string(AppendBytes(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("AppendBytes(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestIsPlainASCII(t *testing.T) {
	for in, want := range map[string]bool{"2026-11-28T10:57:28Z": true, "a\"b": false, "é": false, "a\nb": false, "": true} {
		if got := IsPlainASCII([]byte(in)); got != want {
			t.Errorf("IsPlainASCII(%q) = %v, want %v", in, got, want)
		}
	}
}

// FuzzAppendString checks that any input encodes to a valid JSON string
// that decodes back to the input (valid UTF-8) or to the input with
// invalid bytes replaced by U+FFFD.
func FuzzAppendString(f *testing.F) {
	f.Add([]byte("hello \xff \x00 \"x\""))
	f.Add([]byte("q\"b\\\n\t\x00\xff\u2028é"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := AppendBytes(nil, in)
		var s string
		if err := json.Unmarshal(out, &s); err != nil {
			t.Fatalf("%q encoded to invalid JSON %s: %v", in, out, err)
		}
		if want := strings.ToValidUTF8(string(in), "\ufffd"); utf8.Valid(in) && s != want {
			t.Fatalf("valid input changed: %q -> %q", in, s)
		}
		if string(AppendString(nil, string(in))) != string(out) {
			t.Fatalf("AppendString and AppendBytes differ for %q", in)
		}
		if IsPlainASCII(in) && string(out) != `"`+string(in)+`"` {
			t.Fatalf("plain ASCII %q was changed: %s", in, out)
		}
	})
}
