package config

import "testing"

func TestByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteSize
		out     string
		wantErr bool
	}{
		{in: "1048576", want: 1 << 20, out: "1MiB"},
		{in: "4MiB", want: 4 << 20, out: "4MiB"},
		{in: "4mb", want: 4 << 20, out: "4MiB"},
		{in: "512k", want: 512 << 10, out: "512KiB"},
		{in: "2 GiB", want: 2 << 30, out: "2GiB"},
		{in: "1000", want: 1000, out: "1000"},
		{in: "0", want: 0, out: "0"},
		{in: "12B", want: 12, out: "12"},
		{in: "1.5m", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "m", wantErr: true},
		{in: "99999999999g", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var b ByteSize
			err := b.UnmarshalText([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parsed as %d, want error", b)
				}
				return
			}
			if err != nil || b != tc.want {
				t.Fatalf("got %d, %v; want %d", b, err, tc.want)
			}
			out, _ := b.MarshalText()
			if string(out) != tc.out {
				t.Fatalf("marshals to %q, want %q", out, tc.out)
			}
			var back ByteSize
			if err := back.UnmarshalText(out); err != nil || back != b {
				t.Fatalf("round trip %q -> %d, %v", out, back, err)
			}
		})
	}
}
