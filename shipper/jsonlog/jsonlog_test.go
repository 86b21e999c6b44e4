package jsonlog

import (
	"encoding/json"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name, in           string
		ok, wantErr        bool
		msg, level, fields string
	}{
		{name: "zap style", in: `{"level":"WARN","msg":"disk low","free":12,"ctx":{"a":[1,2]}}`, ok: true,
			msg: "disk low", level: "warn", fields: `{"ctx":{"a":[1,2]},"free":12}`},
		{name: "message key", in: ` {"message":"m","severity":"error"} `, ok: true, msg: "m", level: "error"},
		{name: "non-string message stays", in: `{"msg":5}`, ok: true, fields: `{"msg":5}`},
		{name: "big number kept exactly", in: `{"id":12345678901234567890}`, ok: true, fields: `{"id":12345678901234567890}`},
		{name: "plain text", in: `hello {"x":1}`},
		{name: "array", in: `[1,2]`},
		{name: "broken", in: `{"x":`, wantErr: true},
		{name: "trailing", in: `{"x":1} {"y":2}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, ok, err := Decode([]byte(tt.in))
			if (err != nil) != tt.wantErr || ok != tt.ok {
				t.Fatalf("Decode(%s) ok=%v err=%v", tt.in, ok, err)
			}
			if string(res.Message) != tt.msg || res.Level != tt.level || string(res.Fields) != tt.fields {
				t.Fatalf("Decode(%s) = msg %q level %q fields %s", tt.in, res.Message, res.Level, res.Fields)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"level":"info","msg":"x","n":1.5}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		res, ok, _ := Decode(in)
		if ok && res.Fields != nil && !json.Valid(res.Fields) {
			t.Fatalf("fields not valid JSON: %s", res.Fields)
		}
	})
}
