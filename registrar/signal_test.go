package registrar

import "testing"

func TestReloadSignal(t *testing.T) {
	tests := []struct {
		sig  string
		want bool
	}{
		{"1", true}, {"SIGHUP", true}, {"hup", true}, {"10", true}, {"USR2", true}, {"28", true},
		{"15", false}, {"9", false}, {"SIGTERM", false}, {"SIGQUIT", false}, {"", false}, {"garbage", false},
	}
	for _, tc := range tests {
		if got := reloadSignal(tc.sig); got != tc.want {
			t.Errorf("reloadSignal(%q) = %v, want %v", tc.sig, got, tc.want)
		}
	}
}
