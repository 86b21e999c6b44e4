package jsonsubset

import "testing"

func TestContains(t *testing.T) {
	tests := []struct {
		want, have string
		ok         bool
	}{
		{`{"a":1}`, `{"a":1,"b":2}`, true},
		{`{"a":1,"b":2}`, `{"a":1}`, false},
		{`{"a":{"b":[1,2]}}`, `{"a":{"b":[1,2],"c":0}}`, true},
		{`{"a":[1,2]}`, `{"a":[1]}`, false},
		{`{"dynamic":false}`, `{"dynamic":"false"}`, true},
		{`{"n":1000}`, `{"n":1000.0}`, true},
		{`{"n":1}`, `{"n":2}`, false},
		{`{"s":"{\"x\":1}"}`, `{"s":"{\"x\":1,\"y\":2}"}`, true},
		{`{"s":"{\"x\":1}"}`, `{"s":"{\"x\":2}"}`, false},
		{`{"a":"x"}`, `{"a":{"b":"x"}}`, false},
		{`{"a":null}`, `{}`, true},
		{`{"a":"x"}`, `{}`, false},
	}
	for _, tc := range tests {
		got, err := ContainsJSON([]byte(tc.want), []byte(tc.have))
		if err != nil || got != tc.ok {
			t.Errorf("ContainsJSON(%s, %s) = %v, %v; want %v", tc.want, tc.have, got, err, tc.ok)
		}
	}
}
