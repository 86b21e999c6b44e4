package esout

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

func TestAppendCreate(t *testing.T) {
	tests := []struct {
		name, index, id, body, want string
	}{
		{"plain", "logs-a-b", "id1", `{"a":1}`, "{\"create\":{\"_index\":\"logs-a-b\",\"_id\":\"id1\"}}\n{\"a\":1}\n"},
		{"no id", "logs-a-b", "", `{}`, "{\"create\":{\"_index\":\"logs-a-b\"}}\n{}\n"},
		{"escaped id", "i", "a\"b\\c\nd\x01", `{}`, "{\"create\":{\"_index\":\"i\",\"_id\":\"a\\\"b\\\\c\\nd\\u0001\"}}\n{}\n"},
		{"invalid utf8 id", "i", "a\xffb", `{}`, "{\"create\":{\"_index\":\"i\",\"_id\":\"a\\ufffdb\"}}\n{}\n"},
		{"utf8 id", "i", "é☃", `{}`, "{\"create\":{\"_index\":\"i\",\"_id\":\"é☃\"}}\n{}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(appendCreate(nil, tc.index, tc.id, []byte(tc.body)))
			if got != tc.want {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			if len(lines) != 2 {
				t.Fatalf("want 2 lines, got %d", len(lines))
			}
			var action map[string]map[string]string
			if err := json.Unmarshal([]byte(lines[0]), &action); err != nil {
				t.Fatalf("action line is not JSON: %v", err)
			}
			if a := action["create"]; a["_index"] != tc.index || a["_id"] != jsonRoundTrip(tc.id) {
				t.Fatalf("action decodes to %v", action)
			}
			if tc.id == "" || !strings.ContainsAny(tc.id, "\"\\\n\x01\xff") {
				if n := createSize(tc.index, tc.id, []byte(tc.body)); n != len(got) {
					t.Fatalf("createSize = %d, encoded %d", n, len(got))
				}
			}
		})
	}
}

// TestEncodeCompressedEqualsPlain: a gzipped request body decompresses to
// exactly the plain one, for requests smaller than one encoding chunk,
// spanning several, and empty.
func TestEncodeCompressedEqualsPlain(t *testing.T) {
	for _, n := range []int{0, 1, 10, 3 * encodeChunk / 200} {
		t.Run(fmt.Sprint(n, "docs"), func(t *testing.T) {
			var items []*item
			for _, d := range benchDocs(n) {
				items = append(items, &item{doc: d})
			}
			s := &sender{}
			s.gz, _ = kgzip.NewWriterLevel(io.Discard, kgzip.BestSpeed)
			plain := slices.Clone(encode(s, items, false))
			zr, err := gzip.NewReader(bytes.NewReader(encode(s, items, true)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("decompressed body (%d bytes) differs from the plain one (%d bytes)", len(got), len(plain))
			}
			if n > 0 && bytes.Count(plain, []byte("\n")) != 2*n {
				t.Fatalf("plain body has %d lines, want %d", bytes.Count(plain, []byte("\n")), 2*n)
			}
		})
	}
}
